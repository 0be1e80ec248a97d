"""Atomic writes: the target holds the old bytes or the new bytes, never a partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stylecast.core.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_replaces_content(tmp_path):
    target = tmp_path / "deep" / "model.onnx"
    atomic_write_bytes(target, b"first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["model.onnx"]


def test_failure_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"good checkpoint")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a checkp")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"good checkpoint"
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_new_file_gets_umask_mode_and_existing_mode_is_kept(tmp_path):
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.json"
        atomic_write_text(fresh, "{}")
        assert fresh.stat().st_mode & 0o777 == 0o644
        private = tmp_path / "secret.key"
        private.write_text("x")
        private.chmod(0o600)
        atomic_write_text(private, "y")
        assert private.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old_umask)


def test_sigkill_mid_write_leaves_previous_file_intact(tmp_path):
    """A writer killed while writing (as by the OOM killer) must not damage the target."""
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    started = tmp_path / "started"
    code = (
        "import sys, time, pathlib\n"
        "from stylecast.core.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    with open(tmp, 'wb') as f:\n"
        "        f.write(b'partial')\n"
        "        f.flush()\n"
        "        pathlib.Path(sys.argv[2]).touch()\n"
        "        time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(target), str(started)])
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline and writer.poll() is None:
        time.sleep(0.02)
    assert started.exists(), "writer never started writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert target.read_bytes() == b"previous model"


def test_unwritable_targets_are_refused_up_front(tmp_path):
    from stylecast.core.atomic import check_writable
    from stylecast.core.errors import InputError

    assert check_writable(tmp_path / "new" / "model.onnx") == tmp_path / "new" / "model.onnx"
    with pytest.raises(InputError, match="is a folder"):
        check_writable(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create its folder"):
        check_writable(tmp_path / "file" / "model.onnx")
