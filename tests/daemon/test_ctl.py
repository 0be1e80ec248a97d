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


def test_status_json_prints_the_reply_as_json(daemon, capsys):
    _, endpoint = daemon
    code, out, err = ctl(capsys, "--endpoint", endpoint, "status", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ok": True, "style": "mosaic", "paused": False, "fps": 29.5}
    assert out.startswith('{\n  "ok": true,')  # indented for people


def test_status_is_a_short_summary_for_people(daemon, capsys):
    """The fake daemon's status has three keys: what it lacks shows as "-", nothing breaks."""
    _, endpoint = daemon
    code, out, err = ctl(capsys, "--endpoint", endpoint, "status")
    assert (code, err) == (0, "")
    labels = [line.split()[0] for line in out.splitlines()]
    assert labels == ["state", "style", "engine", "source", "fps", "latency", "frame", "dropped",
                      "uptime"]
    assert "state     running\n" in out and "style     mosaic\n" in out


def test_every_control_command(daemon, capsys):
    fake, endpoint = daemon
    assert ctl(capsys, "--endpoint", endpoint, "set-style", "udnie")[0] == 0
    code, out, _ = ctl(capsys, "--endpoint", endpoint, "styles")
    assert code == 0 and json.loads(out)["current"] == "udnie"
    assert ctl(capsys, "--endpoint", endpoint, "pause")[0] == 0
    assert fake.paused
    assert ctl(capsys, "--endpoint", endpoint, "resume")[0] == 0
    assert (fake.style, fake.paused) == ("udnie", False)
    code, out, _ = ctl(capsys, "--endpoint", endpoint, "set-strength", "0.6")
    assert code == 0
    assert json.loads(out) == {"ok": True, "style": "udnie", "strength": 0.6, "smoothing": 0.0}
    assert ctl(capsys, "--endpoint", endpoint, "set-smoothing", "0.25", "--style", "mosaic")[0] == 0
    assert fake.tunings == {"udnie": {"strength": 0.6, "smoothing": 0.0},
                            "mosaic": {"strength": 1.0, "smoothing": 0.25}}


def test_every_control_command_has_a_verb():
    from stylecast.daemon.control import COMMANDS

    verbs = next(action.choices for action in build_parser()._actions
                 if action.dest == "command")
    assert {command.replace("_", "-") for command in COMMANDS} <= set(verbs)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "half"])
def test_strength_and_smoothing_must_be_from_0_to_1(value, capsys):
    for verb in ("set-strength", "set-smoothing"):
        with pytest.raises(SystemExit) as usage:
            main([verb, "--", value] if value.startswith("-") else [verb, value])
        assert usage.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == (f"stylecast-ctl {verb}: error: argument VALUE: "
                                                f"expected a number from 0 to 1, got {value!r}")


def test_watch_redraws_the_summary(daemon, capsys):
    _, endpoint = daemon
    code, out, err = ctl(capsys, "--endpoint", endpoint, "watch", "--interval", "0.05",
                         "--count", "3")
    assert (code, err) == (0, "")
    assert out.count("state     running") == 3 and out.count(endpoint) == 3


def test_watch_goes_on_while_the_daemon_does_not_answer(tmp_path, capsys):
    path = tmp_path / "control"
    code, out, _ = ctl(capsys, "--endpoint", f"ipc://{path}", "watch", "--interval", "0.05",
                       "--count", "2")
    assert code == 0
    assert out.count(f"no status: no control socket at {path} (is stylecastd running?)") == 2


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
