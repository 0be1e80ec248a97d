"""Read Qt binary resource files (.rcc, as written by `rcc --binary`): list and extract them.

A build-time tool for the bundled styles' recipe (GCompris ships its pictures in .rcc files);
nothing in the installed package needs it. The format, all numbers big-endian:

    header   b"qres", version (u32), tree offset, data offset, names offset (u32 each),
             and from version 3 the overall flags (u32: which compressions occur)
    tree     one node per file or folder, node 0 is the root folder:
             name offset (u32), flags (u16: 1 zlib, 2 folder, 4 zstd), then
               folder: child count (u32), index of the first child node (u32)
               file:   territory (u16), language (u16), data offset (u32)
             and from version 2 the last-modified time (u64, ms since the epoch)
    names    length in UTF-16 units (u16), hash (u32), the name in UTF-16BE
    data     length (u32), the bytes; zlib entries are qCompress output (the uncompressed
             length as u32, then a zlib stream), zstd entries one zstd frame

Usage:
    python configs/bundled/qt_resources.py list FILE.rcc
    python configs/bundled/qt_resources.py extract FILE.rcc OUT_DIR [PATTERN]  (fnmatch on paths)
"""

from __future__ import annotations

import fnmatch
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from stylecast.core.atomic import atomic_write_bytes
from stylecast.core.errors import InputError, run_cli

MAGIC = b"qres"
SUPPORTED_VERSIONS = (1, 2, 3)
FLAG_ZLIB = 0x01
FLAG_FOLDER = 0x02
FLAG_ZSTD = 0x04
NODE_SIZE_V1 = 14
NODE_SIZE_V2 = 22  # + last-modified time


class ResourceFormatError(InputError):
    """A file that is not a Qt resource file, or one that is damaged."""


@dataclass(frozen=True)
class ResourceEntry:
    """One file inside a resource file: its path (folders joined by '/', no leading ':/')."""

    path: str
    flags: int
    data_offset: int  # relative to the data section

    @property
    def compression(self) -> str:
        if self.flags & FLAG_ZSTD:
            return "zstd"
        return "zlib" if self.flags & FLAG_ZLIB else "none"


class ResourceFile:
    """A .rcc file read into memory: `entries` in tree order, `read(path)` gives a file's bytes."""

    def __init__(self, blob: bytes, source: str = "<bytes>") -> None:
        self.source = source
        self._blob = blob
        header = self._header(blob)
        self.version, self._tree, self._data, self._names = header
        self._node_size = NODE_SIZE_V1 if self.version == 1 else NODE_SIZE_V2
        self.entries: list[ResourceEntry] = []
        self._walk(0, "", depth=0)
        self._by_path = {entry.path: entry for entry in self.entries}

    @classmethod
    def open(cls, path: str | Path) -> ResourceFile:
        path = Path(path)
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
        return cls(blob, str(path))

    def read(self, path: str) -> bytes:
        entry = self._by_path.get(path.lstrip(":/"))
        if entry is None:
            raise InputError(f"{self.source}: no file {path!r} inside")
        return self._payload(entry)

    def extract(self, out: Path, pattern: str = "*") -> list[Path]:
        """Write the files whose path matches `pattern` under `out`, keeping their folders."""
        written = []
        for entry in self.entries:
            if fnmatch.fnmatchcase(entry.path, pattern):
                target = out / entry.path
                atomic_write_bytes(target, self._payload(entry))
                written.append(target)
        return written

    # -- parsing -------------------------------------------------------------------------------

    def _fail(self, what: str) -> ResourceFormatError:
        return ResourceFormatError(f"{self.source}: not a readable Qt resource file ({what})")

    def _header(self, blob: bytes) -> tuple[int, int, int, int]:
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise self._fail("no 'qres' header")
        version, tree, data, names = struct.unpack_from(">4I", blob, 4)
        if version not in SUPPORTED_VERSIONS:
            raise self._fail(f"format version {version}, this reader knows 1 to 3")
        if max(tree, data, names) > len(blob):
            raise self._fail("section offsets past the end of the file")
        return version, tree, data, names

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        try:
            return struct.unpack_from(fmt, self._blob, offset)
        except struct.error:
            raise self._fail(f"truncated at byte {offset}") from None

    def _name(self, name_offset: int) -> str:
        start = self._names + name_offset
        (length,) = self._unpack(">H", start)
        raw = self._blob[start + 6:start + 6 + 2 * length]
        if len(raw) != 2 * length:
            raise self._fail(f"name at byte {start} runs past the end")
        name = raw.decode("utf-16-be", errors="replace")
        if name in ("", ".", "..") or "/" in name or "\\" in name:
            raise self._fail(f"entry name {name!r} is not a plain file or folder name")
        return name

    def _walk(self, node: int, prefix: str, depth: int) -> None:
        if depth > 64:
            raise self._fail("folder tree loops or is too deep")
        offset = self._tree + node * self._node_size
        name_offset, flags = self._unpack(">IH", offset)
        if not flags & FLAG_FOLDER:
            (data_offset,) = self._unpack(">I", offset + 10)
            self.entries.append(ResourceEntry(prefix + self._name(name_offset), flags, data_offset))
            return
        count, first = self._unpack(">II", offset + 6)
        if first + count > (len(self._blob) - self._tree) // self._node_size + 1:
            raise self._fail(f"folder node {node} points past the tree")
        folder = "" if node == 0 else prefix + self._name(name_offset) + "/"
        for child in range(first, first + count):
            self._walk(child, folder, depth + 1)

    def _payload(self, entry: ResourceEntry) -> bytes:
        start = self._data + entry.data_offset
        (length,) = self._unpack(">I", start)
        stored = self._blob[start + 4:start + 4 + length]
        if len(stored) != length:
            raise self._fail(f"{entry.path}: data runs past the end")
        if entry.compression == "zlib":
            return self._inflate(entry, stored)
        if entry.compression == "zstd":
            return _zstd_decompress(stored, f"{self.source}: {entry.path}")
        return stored

    def _inflate(self, entry: ResourceEntry, stored: bytes) -> bytes:
        if len(stored) < 4:
            raise self._fail(f"{entry.path}: zlib entry shorter than its length prefix")
        (expected,) = struct.unpack_from(">I", stored)
        try:
            data = zlib.decompress(stored[4:])
        except zlib.error as err:
            raise self._fail(f"{entry.path}: zlib data is damaged: {err}") from None
        if len(data) != expected:
            raise self._fail(f"{entry.path}: inflated to {len(data)} bytes, expected {expected}")
        return data


def _zstd_decompress(stored: bytes, where: str) -> bytes:
    """Qt 5.13+ may store entries as zstd frames; Python has no zstd before 3.14."""
    decompress = _zstd_decompressor(where)
    try:
        return decompress(stored)
    except Exception as err:  # each zstd binding raises its own error type
        raise ResourceFormatError(f"{where}: zstd data is damaged: {err}") from None


def _zstd_decompressor(where: str):
    try:
        from compression import zstd  # Python 3.14+

        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise InputError(f"{where}: is zstd-compressed; install the 'zstandard' package "
                         "(or use Python 3.14+) to read it") from None
    return lambda data: zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("list", "extract") or (argv[0] == "extract"
                                                                 and len(argv) < 3):
        print(__doc__.split("Usage:")[1].rstrip(), file=sys.stderr)
        return 2
    resources = ResourceFile.open(argv[1])
    if argv[0] == "list":
        for entry in resources.entries:
            print(f"{entry.compression:5} {entry.path}")
        return 0
    written = resources.extract(Path(argv[2]), argv[3] if len(argv) > 3 else "*")
    print(f"extracted {len(written)} files from {argv[1]} to {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("qt_resources.py", lambda: main(sys.argv[1:])))
