"""A real small disk for full-disk tests: a tmpfs of a few hundred kB mounted on a test folder.

Mounting needs root (CAP_SYS_ADMIN); where it is refused the test is skipped with the reason.
Every test that uses it has a companion that needs no mount: writing to /dev/full, a real
device whose every write fails with ENOSPC, so the full-disk path is never left untested.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

DEV_FULL = Path("/dev/full")


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "256k") -> Iterator[Path]:
    """Mount a tmpfs of `size` (mount's units: 256k, 2m) on `folder` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the /dev/full test covers "
                    "the full-disk path here")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(folder)], capture_output=True, text=True, timeout=30)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the /dev/full test "
                    "covers the full-disk path")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def needs_dev_full() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not DEV_FULL.is_char_device(), reason="no /dev/full here")
