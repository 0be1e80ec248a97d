"""Lifecycle fault tests (issue #10): SIGTERM at every stage of a start (the first moments, a
camera still opening, a TensorRT engine build, a frame in the engine), a style switch that has to
build an engine, and a restart after SIGKILL. Real stylecastd processes, real signals, real
ZeroMQ sockets, and a unix datagram socket standing in for systemd's NOTIFY_SOCKET.

The engine-build tests run `stylecastd` through a small stand-in script: the real main() with
only the engine loader swapped for one that first "builds" the model through the real
export.engine_cache.ensure_engine (its heartbeat and atomic engine write included) with a
TensorRT builder stand-in that takes $SLOW_BUILD_S seconds, then runs it with ONNX Runtime.

Covered elsewhere: SIGTERM while frames flow and its STOPPING=1 (test_daemon), SIGHUP with a
broken config keeping the old one (test_daemon), EXTEND_TIMEOUT_USEC before READY (test_service).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from support import daemon_process
from support.daemon_process import SMALL_TEST_SOURCE, receive, start_daemon
from support.tiny_models import tiny_model

STOP_TIMEOUT_S = 10  # systemd/stylecast.service: TimeoutStopSec=10

STANDIN_STYLECASTD = f"""#!{sys.executable}
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})  # tests/, for support/
from stylecast.daemon import main, service, styles
from stylecast.daemon.engines import load_engine
from stylecast.daemon.engines import engine_cache
from support.build_backend import RecordingBackend

engine_cache.NOTIFY_INTERVAL_S = 0.2

def loader(path, settings, *, frame_size, notify):
    if path.name in os.environ["SLOW_BUILD_MODELS"].split(","):
        engine_cache.ensure_engine(path, cache_dir=settings.cache_dir, precision="fp16",
                                   size=frame_size, notify=notify, builder=RecordingBackend(
                                       gpu=("stand-in GPU", "8.7"),
                                       delay_s=float(os.environ["SLOW_BUILD_S"])))
    return load_engine(path, settings, frame_size=frame_size)

service.LoadedEngines = lambda: styles.LoadedEngines(loader)
raise SystemExit(main.main())
"""


@pytest.fixture
def slow_build(folder, monkeypatch):
    """daemon_with(...) then starts the stand-in stylecastd; call it with the model file names
    to build and the seconds each build takes."""
    script = folder / "stylecastd-standin"
    script.write_text(STANDIN_STYLECASTD)
    script.chmod(0o755)
    monkeypatch.setattr(daemon_process, "STYLECASTD", script)
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))  # engine.cache_dir's default

    def configure(names: list[str], seconds: float) -> None:
        monkeypatch.setenv("SLOW_BUILD_MODELS", ",".join(names))
        monkeypatch.setenv("SLOW_BUILD_S", str(seconds))

    return configure


def assert_clean_stop(daemon) -> str:
    """Exit 0 within systemd's stop timeout, no traceback, STOPPING=1, ipc socket files
    removed; stderr."""
    code, err = daemon.wait(timeout_s=STOP_TIMEOUT_S)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert not (daemon.folder / "frames").exists() and not (daemon.folder / "control").exists()
    messages = daemon.notify.drain()
    assert any("STOPPING=1" in m for m in messages), messages
    return err


# --- SIGTERM during start-up --------------------------------------------------------------------


def caught_signals(pid: int) -> int:
    """The signals a process has handlers for (SigCgt), as a bit mask: bit n-1 = signal n."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "SigCgt":
            return int(value, 16)
    raise AssertionError(f"no SigCgt in /proc/{pid}/status")


def start_in_early_window(daemon_with, *args: str):
    """A daemon caught while it still imports and reads its config: main() has installed its
    early handlers (SIGTERM caught) and Daemon.run its own not yet (SIGHUP not caught; it is
    ignored until then)."""
    term, hup = 1 << (signal.SIGTERM - 1), 1 << (signal.SIGHUP - 1)
    for _attempt in range(5):
        daemon = daemon_with(*args)
        deadline = time.monotonic() + 30
        while daemon.process.poll() is None and time.monotonic() < deadline:
            try:
                caught = caught_signals(daemon.process.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            if caught & hup:
                break  # already past the window: try a new process
            if caught & term:
                return daemon
            time.sleep(0.0005)
        daemon.close()
    raise AssertionError("never caught stylecastd between main() and Daemon.run")


def test_sigterm_in_the_first_moments_exits_0(daemon_with, models):
    """Before the fix this was death by SIGTERM (-15): the handlers came with Daemon.run."""
    daemon = start_in_early_window(daemon_with, "--model", str(models["invert"]),
                                   "--source", SMALL_TEST_SOURCE)
    daemon.signal(signal.SIGTERM)
    code, err = daemon.wait(timeout_s=STOP_TIMEOUT_S)
    assert code == 0 and "Traceback" not in err, err
    assert not (daemon.folder / "frames").exists() and not (daemon.folder / "control").exists()
    assert not any("READY=1" in m for m in daemon.notify.drain())


def test_sighup_in_the_first_moments_does_not_kill_the_daemon(daemon_with,
                                                              models):
    """SIGHUP's default action is to terminate: before the fix it killed a starting daemon."""
    daemon = start_in_early_window(daemon_with, "--model", str(models["invert"]),
                                   "--source", SMALL_TEST_SOURCE)
    daemon.signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1")
    assert receive(daemon.subscribe(b"stylized"))[1]["style"] == "invert"
    daemon.signal(signal.SIGTERM)
    assert_clean_stop(daemon)


@pytest.fixture
def silent_rtsp_camera():
    """A TCP listener that accepts and never answers: an RTSP camera that hangs mid-connect
    (OpenCV's FFmpeg waits up to 10 s in open())."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(30)
    yield server
    server.close()


def test_sigterm_while_the_camera_is_still_opening(daemon_with, silent_rtsp_camera,
                                                   models):
    pytest.importorskip("cv2", reason="rtsp:// sources need OpenCV (the [video] extra)")
    port = silent_rtsp_camera.getsockname()[1]
    daemon = daemon_with("--model", str(models["invert"]),
                         "--source", f"rtsp://127.0.0.1:{port}/cam")
    connection, _ = silent_rtsp_camera.accept()  # the daemon is inside open() now
    try:
        status = daemon.notify.wait_for("STATUS=opening source")
        assert f"127.0.0.1:{port}" in status
        assert daemon.request({"cmd": "status"})["source"]["state"] == "opening"
        daemon.signal(signal.SIGTERM)
        err = assert_clean_stop(daemon)
    finally:
        connection.close()
    assert not any("READY=1" in m for m in daemon.notify.messages)  # no frame, never ready
    assert "stopping" in err


def test_sigterm_during_an_engine_build(daemon_with, slow_build, models):
    slow_build(["invert.onnx"], seconds=60)
    daemon = daemon_with("--model", str(models["invert"]), "--source", SMALL_TEST_SOURCE)
    daemon.notify.wait_for("EXTEND_TIMEOUT_USEC=")
    daemon.notify.wait_for("STATUS=building the TensorRT engine")
    daemon.signal(signal.SIGTERM)
    assert_clean_stop(daemon)
    messages = daemon.notify.messages
    stopping = next(i for i, m in enumerate(messages) if "STOPPING=1" in m)
    # Nothing after STOPPING=1 extends systemd's timeouts: the build's heartbeat goes quiet.
    assert not any("EXTEND_TIMEOUT_USEC" in m for m in messages[stopping:]), messages
    assert not any("READY=1" in m for m in messages)


def slow_model(path: Path, *, size: int = 2048, matmuls: int = 12) -> Path:
    """`255 - x` that also multiplies two size x size matrices `matmuls` times (derived from the
    frame, so ONNX Runtime cannot fold them away): about a second a frame on one thread."""
    model = tiny_model()
    graph = model.graph
    cast, *rest = list(graph.node)
    burn = [helper.make_node("ReduceMean", ["xf"], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "tiny"], ["seed"]),
            helper.make_node("Expand", ["seed", "square"], ["m0"])]
    for i in range(matmuls):
        burn.append(helper.make_node("MatMul", [f"m{i}", "m0"], [f"m{i + 1}"]))
    burn += [helper.make_node("ReduceSum", [f"m{matmuls}"], ["nothing"], keepdims=0),
             helper.make_node("Add", ["xf", "nothing"], ["x_again"])]
    rest[0].input[1] = "x_again"  # the Sub node: 255 - (x + ~0)
    del graph.node[:]
    graph.node.extend([cast, *burn, *rest])
    graph.initializer.extend([numpy_helper.from_array(np.float32(1e-20), "tiny"),
                              numpy_helper.from_array(np.array([size, size], np.int64),
                                                      "square")])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_sigterm_mid_frame_with_a_slow_engine(daemon_with, folder):
    """With about a second in the engine per frame and frames always waiting, the inference
    thread is inside ONNX Runtime's run() at nearly any moment: SIGTERM lands mid-frame."""
    config = folder / "one-thread.toml"
    config.write_text("[engine]\nthreads = 1\n")  # leave the other core to the other tests
    model = slow_model(folder / "slow.onnx")
    daemon = daemon_with("--config", str(config), "--model", str(model),
                         "--source", SMALL_TEST_SOURCE)
    assert receive(daemon.subscribe(b"stylized"))[1]["style"] == "slow"  # named by its file
    daemon.notify.wait_for("READY=1")
    daemon.signal(signal.SIGTERM)
    assert_clean_stop(daemon)


# --- style switches that build an engine --------------------------------------------------------


def two_styles_config(folder: Path, paths: dict[str, Path]) -> Path:
    config = folder / "styles.toml"
    config.write_text(f'[styles]\nactive = "invert"\n[styles.models]\n'
                      f'invert = "{paths["invert"]}"\nwarm = "{paths["warm"]}"\n')
    return config


def request_in_background(daemon, payload: dict) -> tuple[threading.Thread, list[dict]]:
    replies: list[dict] = []
    thread = threading.Thread(target=lambda: replies.append(daemon.request(payload, 60)),
                              daemon=True)
    thread.start()
    return thread, replies


def test_a_set_style_that_builds_an_engine_keeps_the_watchdog_fed(daemon_with, folder, slow_build,
                                                                 models):
    """Before the fix the build ran on the main thread: no WATCHDOG=1 for its whole length
    (minutes on a Jetson, past WatchdogSec=30), so systemd killed a healthy daemon."""
    slow_build(["warm.onnx"], seconds=3)
    daemon = daemon_with("--config", str(two_styles_config(folder, models)),
                         "--source", SMALL_TEST_SOURCE)
    daemon.notify.wait_for("READY=1")
    daemon.notify.drain()
    seen_before = len(daemon.notify.messages)
    thread, replies = request_in_background(daemon, {"cmd": "set_style", "style": "warm"})
    while thread.is_alive():  # collect what systemd hears while the switch is under way
        daemon.notify.drain()
        time.sleep(0.05)
    during = daemon.notify.messages[seen_before:]
    assert replies and replies[0]["ok"] is True and replies[0]["style"] == "warm", replies
    # WATCHDOG_USEC = 1 s: a ping is due every 0.5 s while the old style keeps flowing; three
    # seconds of build give about six. Three is a bound a loaded machine still meets.
    assert sum("WATCHDOG=1" in m for m in during) >= 3, during
    assert any("building the TensorRT engine" in m for m in during if "STATUS=" in m), during
    assert not any("EXTEND_TIMEOUT_USEC" in m for m in during)  # only start-up is extended
    sub = daemon.subscribe(b"stylized")
    deadline = time.monotonic() + 20
    while receive(sub)[1]["style"] != "warm":
        assert time.monotonic() < deadline
    daemon.signal(signal.SIGTERM)
    assert_clean_stop(daemon)


def test_sigterm_during_a_set_style_build(daemon_with, folder, slow_build,
                                          models):
    slow_build(["warm.onnx"], seconds=60)
    daemon = daemon_with("--config", str(two_styles_config(folder, models)),
                         "--source", SMALL_TEST_SOURCE)
    daemon.notify.wait_for("READY=1")
    thread, replies = request_in_background(daemon, {"cmd": "set_style", "style": "warm"})
    deadline = time.monotonic() + 30
    while not any("building the TensorRT engine" in m for m in daemon.notify.drain()):
        assert time.monotonic() < deadline, daemon.notify.messages
        time.sleep(0.05)
    daemon.signal(signal.SIGTERM)
    assert_clean_stop(daemon)
    thread.join(10)
    assert replies and replies[0]["ok"] is False and "stopping" in replies[0]["error"], replies


# --- restart after SIGKILL ----------------------------------------------------------------------


def test_a_restart_after_sigkill_binds_over_the_left_ipc_sockets(folder,
                                                                  models):
    args = ("--model", str(models["invert"]), "--source", SMALL_TEST_SOURCE)
    first = start_daemon(folder / "cam", *args)
    try:
        first.notify.wait_for("READY=1")
        first.signal(signal.SIGKILL)
        assert first.wait()[0] == -signal.SIGKILL
    finally:
        first.close()
    frames, control, notify = (folder / "cam" / name for name in ("frames", "control", "notify"))
    assert frames.exists() and control.exists()  # nothing cleaned up after a SIGKILL
    notify.unlink()  # the stand-in systemd's socket, for the second start's listener

    second = start_daemon(folder / "cam", *args)  # the same ipc endpoints
    try:
        assert receive(second.subscribe(b"stylized"))[1]["style"] == "invert"
        assert second.request({"cmd": "status"})["ok"]
        second.signal(signal.SIGTERM)
        assert_clean_stop(second)
    finally:
        second.close()
