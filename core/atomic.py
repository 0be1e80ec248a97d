"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every checkpoint, model and sidecar that stylecast writes goes through here: the data is written
to a temporary file in the destination folder, flushed to disk, then renamed over the target.

A full disk (ENOSPC, or EDQUOT: over quota) while writing removes the temporary file, leaves the
target as it was, and is raised as one DiskFullError (exit 1) whose line names the file, about how
much it needed and how much is free. Writers that wrap the OSError in an exception of their own
(torch.save into a file object raises a RuntimeError from it) are recognised by the chain.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stylecast.core.errors import DiskFullError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *,
                size_hint: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` if the block succeeds.

    For writers that want a file name (torch.save, onnx.save). If the block raises, the temporary
    file is removed and `target` is untouched; a full disk is raised as DiskFullError, which
    names `size_hint` (the bytes to be written, where the caller knows them) as what was needed.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
        os.close(fd)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full_error(target, needed=size_hint) from None
        raise
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file 0600; give the result the mode a plain open() would have.
        os.chmod(tmp, _mode_for(target))
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    except BaseException as err:
        if not is_disk_full(err):
            raise
        written = _size(tmp)
        tmp.unlink(missing_ok=True)  # first, so the free space reported is what there really is
        raise disk_full_error(target, needed=size_hint, written=written) from None
    finally:
        tmp.unlink(missing_ok=True)


def is_disk_full(err: BaseException | None) -> bool:
    """Whether `err`, or an exception it was raised from or while handling, is ENOSPC/EDQUOT."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        err = err.__cause__ or err.__context__
    return False


def disk_full_error(target: str | os.PathLike[str], *, needed: int | None = None,
                    written: int = 0) -> DiskFullError:
    """The one-line DiskFullError for `target`: what it needed (`needed`, else the size of the
    file it replaces, else more than the `written` bytes that fitted) and what is free."""
    target = Path(target)
    previous = _size(target)
    if needed is not None:
        need = f"about {human_size(max(needed, written))} needed"
    elif previous > written:
        need = f"about {human_size(previous)} needed (the size of the file it replaces)"
    elif written:
        need = f"more than {human_size(written)} needed"
    else:
        need = "no room even to start it"
    folder = _existing_folder(target.parent)
    try:
        free = f"{human_size(shutil.disk_usage(folder).free)} free in {folder}"
    except OSError:
        free = f"free space in {folder} unknown"
    kept = "; the old file is unchanged" if target.exists() else ""
    return DiskFullError(f"{target}: disk full: {need}, {free}{kept}; free some space and run it "
                         "again")


def human_size(size: float) -> str:
    """Bytes in decimal units, as `ls -h --si` and the logs count them: '68.7 MB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} bytes"


def check_writable(target: str | os.PathLike[str]) -> Path:
    """Fail early, before expensive work, if `target` cannot be written: one clear InputError."""
    from stylecast.core.errors import InputError

    target = Path(target)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{target}: cannot create its folder ({err.strerror})") from None
    if not os.access(target.parent, os.W_OK):
        raise InputError(f"{target}: its folder is not writable")
    return target


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files that a writer killed mid-write (SIGKILL, power loss) left beside
    `target`; returns what was removed."""
    target = Path(target)
    stale = list(target.parent.glob(f".{target.name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target, size_hint=len(data)) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def _mode_for(target: Path) -> int:
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _existing_folder(folder: Path) -> Path:
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (after a rename, so the new entry survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
