"""stylecast-ctl against a real ControlServer (fake daemon behind it) over ipc and tcp."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import zmq

from stylecast.core.errors import StylecastError
from stylecast.daemon.ctl import build_parser, main, request
from stylecast.stream.endpoints import default_control_endpoint

from support.fake_daemon import FakeDaemon, ServerThread

BIN = Path(sys.executable).parent


@pytest.fixture
def daemon(tmp_path):
    """(fake daemon, its control endpoint): a ControlServer on ipc in tmp_path, in a thread."""
    context = zmq.Context()
    fake = FakeDaemon()
    server = ServerThread(context, f"ipc://{tmp_path / 'control'}", fake)
    yield fake, server.endpoint
    server.stop()
    context.destroy(linger=0)


def ctl(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_prints_the_reply_as_json(daemon, capsys):
    _, endpoint = daemon
    code, out, err = ctl(capsys, "--endpoint", endpoint, "status")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ok": True, "style": "mosaic", "paused": False, "fps": 29.5}
    assert out.startswith('{\n  "ok": true,')  # indented for people


def test_every_control_command(daemon, capsys):
    fake, endpoint = daemon
    assert ctl(capsys, "--endpoint", endpoint, "set-style", "udnie")[0] == 0
    code, out, _ = ctl(capsys, "--endpoint", endpoint, "styles")
    assert code == 0 and json.loads(out)["current"] == "udnie"
    assert ctl(capsys, "--endpoint", endpoint, "pause")[0] == 0
    assert fake.paused
    assert ctl(capsys, "--endpoint", endpoint, "resume")[0] == 0
    assert (fake.style, fake.paused) == ("udnie", False)


def test_refused_command_exits_1_with_one_line(daemon, capsys):
    _, endpoint = daemon
    code, out, err = ctl(capsys, "--endpoint", endpoint, "set-style", "nope")
    assert (code, out) == (1, "")
    assert err == "stylecast-ctl: error: unknown style 'nope' (known: mosaic, udnie)\n"


def test_missing_ipc_socket_is_reported_without_waiting(tmp_path, capsys):
    path = tmp_path / "control"
    code, out, err = ctl(capsys, "--endpoint", f"ipc://{path}", "--timeout", "60", "status")
    assert (code, out) == (1, "")
    assert err == f"stylecast-ctl: error: no control socket at {path} (is stylecastd running?)\n"


def test_no_reply_within_the_timeout(capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    code, out, err = ctl(capsys, "--endpoint", endpoint, "--timeout", "0.5", "status")
    assert (code, out) == (1, "")
    assert err == (f"stylecast-ctl: error: no reply from {endpoint} within 0.5 s "
                   "(is stylecastd running?)\n")


def test_bad_endpoint_is_a_config_error(capsys):
    code, _, err = ctl(capsys, "--endpoint", "bogus://x", "status")
    assert code == 78
    assert err == ("stylecast-ctl: error: cannot connect to control endpoint 'bogus://x': "
                   "Protocol not supported\n")


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "soon"])
def test_timeout_must_be_positive(timeout, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["--timeout", timeout, "status"])
    assert usage.value.code == 2
    assert "expected a positive number of seconds" in capsys.readouterr().err


def test_default_endpoint_is_the_runtime_dirs_control_socket():
    assert build_parser().parse_args(["status"]).endpoint == default_control_endpoint()


def test_request_returns_the_reply_including_refusals(daemon):
    _, endpoint = daemon
    assert request(endpoint, {"cmd": "styles"}, 5.0)["styles"] == ["mosaic", "udnie"]
    assert request(endpoint, {"cmd": "reboot"}, 5.0)["ok"] is False


def answer_once(context: zmq.Context, endpoint: str, reply: bytes) -> threading.Thread:
    """A bare REP socket, in its own thread, that answers one request with fixed bytes."""
    bound = threading.Event()

    def answer() -> None:
        rep = context.socket(zmq.REP)
        try:
            rep.bind(endpoint)
            bound.set()
            if rep.poll(10_000):
                rep.recv()
                rep.send(reply)
        finally:
            rep.close(linger=0)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    assert bound.wait(10)
    return thread


@pytest.mark.parametrize("reply", [b"[1, 2]", b"\xff", b"not json"])
def test_request_refuses_a_reply_that_is_not_a_json_object(tmp_path, reply):
    context = zmq.Context()
    endpoint = f"ipc://{tmp_path / 'odd'}"
    try:
        answering = answer_once(context, endpoint, reply)
        with pytest.raises(StylecastError, match=r"^the reply from ipc://.* is not a JSON object"):
            request(endpoint, {"cmd": "status"}, 5.0, context=context)
        answering.join(10)
    finally:
        context.destroy(linger=0)


def test_console_script_talks_to_the_daemon(daemon):
    fake, endpoint = daemon
    result = subprocess.run([str(BIN / "stylecast-ctl"), "--endpoint", endpoint, "set-style",
                             "udnie"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True, "style": "udnie"}
    assert fake.style == "udnie"
