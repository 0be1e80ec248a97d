"""The supervisor in process: what systemd hears while a TensorRT engine builds, and the control
commands' replies. The engine loader is a stand-in that reports build progress like
stylecast.daemon.engines.engine_cache.ensure_engine does; everything else is real."""

from __future__ import annotations

import socket
import threading
import time

from stylecast.daemon.engines import load_engine
from stylecast.daemon.notify import SystemdNotifier
from stylecast.daemon.service import Daemon, free_local_port

from support.daemon_process import NotifyListener
from support.tiny_models import write_tiny_model


def run_until(daemon: Daemon, condition, timeout_s: float = 30.0) -> int:
    """Run the daemon in this (main) thread until `condition()` holds, then stop it."""
    def watch():
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            time.sleep(0.05)
        daemon._requested = "stop"  # what the SIGTERM handler does

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = daemon.run()
    watcher.join()
    return code


def test_engine_build_extends_the_start_timeout_before_ready(folder):
    model = write_tiny_model(folder / "invert.onnx")
    listener = NotifyListener(folder / "notify")
    built = []

    def building_loader(path, settings, *, frame_size, notify):
        for elapsed in (10.0, 20.0):  # ensure_engine calls notify every 10 s of a build
            notify(elapsed)
        built.append(frame_size)
        return load_engine(path, settings, frame_size=frame_size)

    daemon = Daemon(None, {"styles.models": {"invert": str(model)},
                           "source.uri": "test://?width=64&height=48&fps=30",
                           "publish.endpoints": [f"ipc://{folder}/frames"],
                           "control.endpoint": f"ipc://{folder}/control"},
                    notifier=SystemdNotifier({"NOTIFY_SOCKET": str(listener.path)}),
                    engine_loader=building_loader)
    try:
        code = run_until(daemon, lambda: any("READY=1" in m for m in listener.drain()))
        listener.drain()
    finally:
        listener.close()
    assert code == 0
    assert built == [(48, 64)]  # built for the camera's frame size
    messages = listener.messages
    extend = [i for i, m in enumerate(messages) if m.startswith("EXTEND_TIMEOUT_USEC=")]
    ready = next(i for i, m in enumerate(messages) if "READY=1" in m)
    assert len(extend) == 2 and extend[-1] < ready
    assert messages[extend[0]] == "EXTEND_TIMEOUT_USEC=60000000"
    assert any(m.startswith("STATUS=building the TensorRT engine (20 s") for m in messages)
    assert messages[-1] == "STOPPING=1"


def test_set_style_before_the_first_frame_starts_in_that_style(folder):
    models = {name: write_tiny_model(folder / f"{name}.onnx", style=name)
              for name in ("invert", "warm")}
    daemon = Daemon(None, {"styles.models": {k: str(v) for k, v in models.items()},
                           "source.uri": "v4l2:///dev/video99",  # never delivers a frame
                           "publish.endpoints": [f"ipc://{folder}/frames"],
                           "control.endpoint": f"ipc://{folder}/control"},
                    notifier=SystemdNotifier({}))
    replies = []

    def started() -> bool:
        if daemon.pipeline is None:
            return False
        replies.append(daemon.set_style("warm"))
        replies.append(daemon.styles())
        replies.append(daemon.status())
        return True

    assert run_until(daemon, started) == 0
    assert replies[0] == {"style": "warm", "engine": "loading"}
    assert replies[1]["active"] == "warm"
    assert [s["loaded"] for s in replies[1]["styles"]] == [False, False]
    assert replies[2]["engine"] == "loading" and replies[2]["style"] == "warm"


def test_free_local_port_skips_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = free_local_port(busy, tries=1)  # only `busy` to try, then one the OS picks
        assert port not in (None, busy)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
        assert free_local_port(port, tries=3) == port  # a free first choice is kept
