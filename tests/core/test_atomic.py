"""Atomic writes: the target holds the old bytes or the new bytes, never a partial file."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from stylecast.core.atomic import atomic_path, atomic_write_bytes, atomic_write_text, human_size

from support.small_disk import DEV_FULL, needs_dev_full, small_disk


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


# --- a full disk ---------------------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_file_what_it_needs_and_what_is_free(tmp_path):
    from stylecast.core.errors import EX_FAILURE, DiskFullError

    with small_disk(tmp_path / "disk", "256k") as disk:
        target = disk / "model.onnx"
        target.write_bytes(b"previous model")
        with pytest.raises(DiskFullError) as err:
            atomic_write_bytes(target, os.urandom(400_000))
        free = shutil.disk_usage(disk).free
        assert target.read_bytes() == b"previous model"
        assert os.listdir(disk) == ["model.onnx"]  # the temporary file is gone
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{target}: disk full: about 400.0 kB needed, ")
    assert f"{human_size(free)} free in {disk}" in message
    assert "the old file is unchanged" in message
    assert err.value.exit_code == EX_FAILURE  # the environment, not the input: exit 1


def test_a_writer_that_wraps_enospc_is_recognised_by_the_chain(tmp_path):
    """Without a size given, the old file's size stands in for what was needed; a writer's own
    exception raised from the OSError (as torch.save's RuntimeError is) is still a full disk."""
    from stylecast.core.errors import DiskFullError

    with small_disk(tmp_path / "disk", "256k") as disk:
        target = disk / "last.ckpt"
        target.write_bytes(b"x" * 150_000)
        with pytest.raises(DiskFullError, match=r"about 150\.0 kB needed \(the size of the file"
                           r" it replaces\)"), atomic_path(target) as tmp:
            try:
                tmp.write_bytes(b"y" * 400_000)
            except OSError as full:
                raise RuntimeError("unexpected pos 576 vs 534") from full
        assert target.read_bytes() == b"x" * 150_000
        assert os.listdir(disk) == ["last.ckpt"]


@needs_dev_full()
def test_enospc_from_dev_full_is_a_disk_full_error_and_leaves_no_temporary(tmp_path):
    """Needs no mount: /dev/full fails every write with ENOSPC, as a full disk does."""
    from stylecast.core.errors import DiskFullError

    target = tmp_path / "results.json"
    target.write_text("{}")
    with pytest.raises(DiskFullError) as err, atomic_path(target) as tmp:
        tmp.write_text("partial")
        with open(DEV_FULL, "wb") as full:
            full.write(b"more than the disk holds")
    assert str(err.value).startswith(f"{target}: disk full: more than 7 bytes needed, ")
    assert target.read_text() == "{}"
    assert os.listdir(tmp_path) == ["results.json"]


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(PermissionError), atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("partial")
        raise PermissionError(errno.EACCES, "not a full disk")
    assert os.listdir(tmp_path) == []
