"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every checkpoint, model and sidecar that stylecast writes goes through here: the data is written
to a temporary file in the destination folder, flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` if the block succeeds.

    For writers that want a file name (torch.save, onnx.save). If the block raises, the temporary
    file is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file 0600; give the result the mode a plain open() would have.
        os.chmod(tmp, _mode_for(target))
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


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
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def _mode_for(target: Path) -> int:
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
