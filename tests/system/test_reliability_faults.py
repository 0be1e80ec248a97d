"""Fault tests (issue #10): sources that vanish, stall or send garbage, broken model artifacts,
and writers killed mid-write. Real threads and ZeroMQ sockets, real ONNX Runtime sessions, real
stylecastd processes with a unix datagram socket as NOTIFY_SOCKET, real SIGKILLs.

Faults already proven elsewhere are not repeated here (docs/reliability.md lists them): a source
that dies or stalls and is reopened (test_pipeline), garbage frames of the common kinds
(test_pipeline), an engine failing on one frame or on every frame (test_pipeline), a camera that
never opens (test_daemon), a file that is not ONNX and a missing model (test_daemon).
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from stylecast.daemon.config import bundled_styles
from stylecast.daemon.engines import load_engine
from stylecast.daemon.engines.settings import EngineSettings
from stylecast.daemon.service import status_line
from stylecast.daemon.sources import Captured, FrameSource, SourceError

from support.daemon_process import SMALL_TEST_SOURCE, receive
from support.pipeline_doubles import FlakyEngine, ScriptedSource, collect, frame
from support.tiny_models import tiny_model, write_tiny_model
from support.waiting import wait_until

WAIT_S = 30.0  # generous: the machine is a shared 2-core box


# --- sources ------------------------------------------------------------------------------------


class UnpluggableCamera(FrameSource):
    """A camera whose cable can be pulled and plugged back: while unplugged, read() and open()
    fail like a USB camera's do. Frames count up, so a test can tell them apart."""

    def __init__(self) -> None:
        super().__init__("usb://cam")
        self.plugged = threading.Event()
        self.plugged.set()
        self.opens = 0
        self.count = 0

    @property
    def description(self) -> str:
        return "unpluggable camera"

    def open(self) -> None:
        self.opens += 1
        if not self.plugged.is_set():
            raise SourceError("camera unplugged")

    def read(self, timeout_s: float) -> Captured:
        time.sleep(0.01)
        if not self.plugged.is_set():
            raise SourceError("USB cable pulled")
        self.count += 1
        return Captured.now(frame(self.count % 100))

    def close(self) -> None:
        pass


def test_a_camera_that_vanishes_and_returns_shows_the_gap_then_flows_again(
        run_pipeline):
    camera = UnpluggableCamera()
    pipeline, sub = run_pipeline(camera, FlakyEngine())
    before = collect(sub, b"stylized", 3)[-1][0]

    camera.plugged.clear()
    wait_until(lambda: camera.opens >= 3, "two reopen attempts", WAIT_S, 0.02)
    during = pipeline.status()["source"]
    assert during["state"] == "reopening" and during["last_error"] == "camera unplugged"
    assert status_line(pipeline) == "source reopening: camera unplugged"  # systemd's STATUS=
    time.sleep(0.3)
    assert pipeline.status()["source"]["seconds_since_frame"] >= 0.3  # the gap, as it grows
    while sub.poll(0):  # what was published before the cable was pulled
        sub.recv_multipart()
    stats = json.loads(collect(sub, b"stats", 1)[0][1])
    assert stats["source"]["state"] == "reopening" and stats["source"]["reopens"] == 1

    replugged_at = time.monotonic_ns()
    camera.plugged.set()
    after = collect(sub, b"stylized", 1)[0][0]
    assert after["t_capture_ns"] > replugged_at  # a fresh frame, not one held from before
    # The gap shows in the capture timestamps of consecutive published frames.
    assert after["t_capture_ns"] - before["t_capture_ns"] >= 300_000_000
    health = pipeline.status()["source"]
    assert health["state"] == "running" and health["reopens"] == 1
    assert health["last_error"] == "camera unplugged"  # kept for the operator
    assert pipeline.failure is None


def test_more_kinds_of_garbage_frames_are_skipped_and_counted(run_pipeline):
    """Beyond test_pipeline's garbage: a truncated flat buffer, RGBA, zero width, None."""
    truncated = np.frombuffer(bytes(8 * 8 * 3 - 5), np.uint8)
    garbage = [truncated, np.zeros((8, 8, 4), np.uint8), np.zeros((8, 0, 3), np.uint8), None]
    # Each good frame five times: newest-wins slots may drop one on a busy machine.
    script = [frame(30)] * 5 + garbage + [frame(31)] * 5
    pipeline, sub = run_pipeline(ScriptedSource(script), FlakyEngine())
    seen = set()
    deadline = time.monotonic() + WAIT_S
    while 255 - 31 not in seen and time.monotonic() < deadline:
        seen |= {payload[0] for _, payload in collect(sub, b"stylized", 1)}
    assert {255 - 30, 255 - 31} <= seen
    assert pipeline.dropped()["invalid"] == 4 and pipeline.dropped()["engine"] == 0
    assert pipeline.failure is None


def test_a_frame_size_change_mid_stream_is_published_at_the_new_size(
        folder, caplog, run_pipeline):
    """Deliberate behaviour (daemon/pipeline.py docstring): a frame of another size is fitted
    to the static 8x8 model (resized in and back) and published at its own size, logged."""
    engine = load_engine(write_tiny_model(folder / "static8.onnx", height=8, width=8),
                         EngineSettings(runtime="onnxruntime"))
    big = np.full((12, 16, 3), 40, np.uint8)
    script = [frame(11)] * 5 + [big] * 5 + [frame(12)] * 5  # repeated: a drop loses no size
    with caplog.at_level(logging.WARNING, logger="stylecast.daemon.pipeline"):
        pipeline, sub = run_pipeline(ScriptedSource(script), engine)
        sizes = {}
        deadline = time.monotonic() + WAIT_S
        while 255 - 12 not in sizes and time.monotonic() < deadline:
            for header, payload in collect(sub, b"stylized", 1):
                image = np.frombuffer(payload, np.uint8).reshape(header["height"],
                                                                 header["width"], 3)
                assert np.all(image == image[0, 0])  # a flat frame stays flat through resizing
                sizes[int(image[0, 0, 0])] = (header["height"], header["width"])
    assert sizes[255 - 11] == (8, 8) and sizes[255 - 40] == (12, 16) and sizes[255 - 12] == (8, 8)
    assert pipeline.dropped()["invalid"] == 0 and pipeline.dropped()["engine"] == 0
    assert pipeline.failure is None
    assert "frame size changed from 8x8 to 16x12" in caplog.text


def test_a_stalled_read_feeds_no_watchdog_and_status_says_stalled(daemon_with, folder):
    """test:// at 0.05 fps: the first frame at once, then a read that blocks for 20 s (the test
    ends long before), as a hung camera driver would."""
    config = folder / "stall.toml"
    config.write_text("[source]\nstall_timeout_s = 1.0\n")
    model = write_tiny_model(folder / "invert.onnx")
    daemon = daemon_with("--config", str(config), "--model", str(model),
                         "--source", "test://?width=64&height=48&fps=0.05")
    daemon.notify.wait_for("READY=1")
    stalled = daemon.notify.wait_for("STATUS=source stalled")
    assert "no frame for" in stalled
    time.sleep(1.5)  # three watchdog intervals (WATCHDOG_USEC = 1 s)
    messages = daemon.notify.drain()
    # One ping for the one frame that came out (with READY=1); none while nothing flows.
    assert sum("WATCHDOG=1" in m for m in messages) <= 1, messages
    source = daemon.request({"cmd": "status"})["source"]
    assert source["state"] == "stalled" and source["seconds_since_frame"] > 1.0
    daemon.signal(signal.SIGTERM)
    code, err = daemon.wait()
    assert code == 0 and "Traceback" not in err


# --- engines and artifacts ----------------------------------------------------------------------


def _truncated(path: Path, keep: float) -> None:
    data = tiny_model().SerializeToString()
    path.write_bytes(data[:int(len(data) * keep)])


def _no_contract(path: Path) -> None:
    model = tiny_model()
    del model.metadata_props[:]
    onnx.save(model, str(path))


def _newer_contract(path: Path) -> None:
    model = tiny_model()
    for prop in model.metadata_props:
        if prop.key == "stylecast.contract_version":
            prop.value = "2"
    onnx.save(model, str(path))


def _input_rank_2(path: Path) -> None:
    """An (H, W) input where the contract says HWC: ONNX Runtime would refuse every frame."""
    model = tiny_model()
    shape = model.graph.input[0].type.tensor_type.shape
    del shape.dim[:]
    for name in ("height", "width"):
        shape.dim.add().dim_param = name
    onnx.save(model, str(path))


def _input_float(path: Path) -> None:
    model = tiny_model()
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    model.graph.node[0].attribute[0].i = onnx.TensorProto.FLOAT
    onnx.save(model, str(path))


@pytest.mark.parametrize("make, problem", [
    (lambda p: _truncated(p, 0.5), "not a readable ONNX model"),
    (lambda p: _truncated(p, 0.97), "not a readable ONNX model"),  # only the metadata cut off
    (_no_contract, "not a stylecast artifact"),
    (_newer_contract, "'stylecast.contract_version' = '2' is newer"),
    (_input_rank_2, "has rank 2"),
    (_input_float, "is float, but contract field 'stylecast.input.dtype' = 'uint8'"),
], ids=["truncated", "truncated-end", "no-contract", "newer-contract", "input-rank", "input-dtype"])
def test_a_broken_artifact_exits_78_with_one_line(daemon_with, folder, make, problem):
    """Exit 78: the unit's RestartPreventExitStatus=78 (test_systemd) keeps systemd from a
    restart loop. Before the fix the wrong-rank model exited 1 after 30 failed frames."""
    model = folder / "broken.onnx"
    make(model)
    code, err = daemon_with("--model", str(model), "--source", SMALL_TEST_SOURCE).wait()
    lines = err.strip().splitlines()
    assert code == 78, err
    assert len(lines) == 1 and lines[0].startswith("stylecastd: error:"), err
    assert str(model) in lines[0] and problem in lines[0]
    assert "Traceback" not in err


def test_a_broken_second_style_is_refused_before_anything_runs(daemon_with, folder):
    """Every configured style is checked at start, not when someone switches to it."""
    good = write_tiny_model(folder / "good.onnx")
    bad = folder / "bad.onnx"
    _input_rank_2(bad)
    config = folder / "styles.toml"
    config.write_text(f'[styles]\nactive = "good"\n[styles.models]\ngood = "{good}"\n'
                      f'bad = "{bad}"\n')
    daemon = daemon_with("--config", str(config), "--source", SMALL_TEST_SOURCE)
    code, err = daemon.wait()
    assert code == 78 and len(err.strip().splitlines()) == 1 and str(bad) in err
    assert not (daemon.folder / "frames").exists()  # refused before binding anything


def test_the_graph_check_accepts_the_bundled_styles(daemon_with):
    """The check that refuses the wrong-rank model passes the real exported artifacts."""
    daemon = daemon_with("--source", SMALL_TEST_SOURCE)
    topic, header, _ = receive(daemon.subscribe(b"stylized"))
    assert topic == b"stylized" and header["style"] in bundled_styles()


# --- killed writes ------------------------------------------------------------------------------

CHECKPOINT_WRITER = r"""
import sys, time, io, os
from pathlib import Path
import torch
from stylecast.training.checkpoint import CheckpointInfo, save_checkpoint
from stylecast.training.presets import build_generator, preset_config

target, writing = Path(sys.argv[1]), Path(sys.argv[2])

def save(step):
    torch.manual_seed(step)
    info = CheckpointInfo("fit", step, "large", preset_config("large"), "mosaic")
    save_checkpoint(target, info=info, generator=build_generator("large"), train_state={},
                    options={})

class PausingStream:
    # The file torch.save streams into; it stops dead half way, like a process about to die.
    def __init__(self, file, pause_at):
        # save_checkpoint hands torch.save an open file (so a full disk's ENOSPC comes through).
        if isinstance(file, (str, os.PathLike)):
            file = open(file, "wb")
        self.file, self.pause_at, self.written = file, pause_at, 0
    def write(self, data):
        self.file.write(data)
        self.written += len(data)
        if self.written >= self.pause_at:
            self.file.flush()
            os.fsync(self.file.fileno())
            writing.write_text(str(self.written))
            time.sleep(600)
        return len(data)
    def flush(self):
        self.file.flush()

real_save = torch.save
def pausing_save(obj, path):
    size = len(_serialized(obj))
    real_save(obj, PausingStream(path, size // 2))

def _serialized(obj):
    buffer = io.BytesIO()
    real_save(obj, buffer)
    return buffer.getvalue()

save(1)
torch.save = pausing_save
save(2)
"""

EXPORT_WRITER = r"""
import os, sys, time
from pathlib import Path
from stylecast.export.cli import main

writing = Path(sys.argv[3])
real_write_bytes = Path.write_bytes

def pausing_write_bytes(self, data):
    if not self.name.endswith(".tmp"):
        return real_write_bytes(self, data)
    with open(self, "wb") as f:  # half the model, then the process stops dead
        f.write(data[:len(data) // 2])
        f.flush()
        os.fsync(f.fileno())
    writing.write_text(str(len(data)))
    time.sleep(600)

Path.write_bytes = pausing_write_bytes
main(["onnx", sys.argv[1], "-o", sys.argv[2], "--size", "64x64"])
"""


def kill_while_writing(script: str, *args: Path, writing: Path) -> None:
    """Run `script` (python -c) and SIGKILL it once it reports being half way into a write."""
    child = subprocess.Popen([sys.executable, "-c", script, *map(str, args), str(writing)],
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not writing.exists():
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "the writer never got half way"
            time.sleep(0.05)
        child.kill()  # SIGKILL: no finally blocks, no cleanup
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sigkill_mid_checkpoint_write_leaves_the_previous_checkpoint(folder):
    """The real save_checkpoint (torch.save of an 11 MB `large` generator) killed half way."""
    from stylecast.core.atomic import remove_stale_temporaries
    from stylecast.core.errors import InputError
    from stylecast.training.checkpoint import LAST, load_checkpoint, load_generator

    target, writing = folder / LAST, folder / "writing"
    kill_while_writing(CHECKPOINT_WRITER, target, writing=writing)

    assert load_checkpoint(target)["step"] == 1  # the complete previous version
    generator, info = load_generator(target)
    assert info.preset == "large" and sum(p.numel() for p in generator.parameters()) > 2e6
    (partial,) = folder.glob(f".{LAST}.*.tmp")  # the write that was cut off, hidden
    assert partial.stat().st_size >= int(writing.read_text()) > 0
    with pytest.raises(InputError):
        load_checkpoint(partial)
    assert list(folder.glob("*.ckpt")) == [target]  # a glob for checkpoints skips it
    assert remove_stale_temporaries(target) == [partial]  # what a resumed run clears away
    assert sorted(p.name for p in folder.iterdir()) == [LAST, "writing"]


def test_sigkill_mid_export_write_leaves_the_previous_model(folder, photo_rgb):
    """`stylecast-export onnx` (the real command, verification included) killed half way
    through writing its output over a deployed model: the deployed model still loads and runs."""
    from stylecast.core.artifact import read_contract, read_onnx_contract
    from stylecast.core.errors import ArtifactError

    from support.checkpoints import save_nano_checkpoint

    checkpoint, target, writing = folder / "nano.ckpt", folder / "model.onnx", folder / "writing"
    save_nano_checkpoint(checkpoint)
    write_tiny_model(target, style="deployed")
    previous = sha256(target)
    kill_while_writing(EXPORT_WRITER, checkpoint, target, writing=writing)

    assert sha256(target) == previous
    assert read_contract(target).style == "deployed"
    engine = load_engine(target, EngineSettings(runtime="onnxruntime"))
    np.testing.assert_array_equal(engine(photo_rgb[:64, :64]), 255 - photo_rgb[:64, :64])
    (partial,) = folder.glob(".model.onnx.*.tmp")
    assert partial.stat().st_size == int(writing.read_text()) // 2
    with pytest.raises(ArtifactError):
        read_onnx_contract(partial)
    assert list(folder.glob("*.onnx")) == [target]  # a glob for models skips it
