"""Fuzzing the control socket (issue #10): whatever a client sends, it gets one JSON reply with an
"ok" bool (a one-line "error" when false) and the server goes on serving.

Most of it runs against the real ControlServer in this process (fast: hundreds of requests a
second) with control_helpers.FakeDaemon behind it; one shorter run goes to a real stylecastd so
the daemon's own handlers (set_style with junk names, pause/resume) are fuzzed too. Requests go
over real ZeroMQ REQ sockets; raw garbage goes over plain unix and tcp stream sockets.

Hypothesis is derandomized (`derandomize=True`, no example database): every run, in CI too, tries
the same examples, so a failure is reproducible by running the test again.
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stylecast.daemon.control import COMMANDS

from support.daemon_process import receive
from support.fake_daemon import WAIT_S, FakeDaemon, ServerThread, ask
from support.tiny_models import write_tiny_model

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
LIMIT = 8192  # max_message_bytes of the in-process server: small, so sizes near it are cheap
FAKE_STYLES = ("mosaic", "udnie")  # what FakeDaemon knows

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def command_dicts(styles: tuple[str, ...]) -> st.SearchStrategy[dict]:
    """Objects that look like commands: real or junk "cmd", maybe a "style", maybe a "value",
    maybe extra keys."""
    cmds = st.sampled_from(COMMANDS) | st.text(max_size=12) | json_values
    names = st.sampled_from(styles) | st.text(max_size=30) | json_values
    values = st.floats(-0.5, 1.5) | st.sampled_from([0, 1, 0.5]) | json_values

    @st.composite
    def build(draw) -> dict:
        request: dict[str, Any] = {}
        if draw(st.integers(0, 9)):  # mostly with a cmd
            request["cmd"] = draw(cmds)
        if draw(st.booleans()):
            request["style"] = draw(names)
        if draw(st.booleans()):
            request["value"] = draw(values)
        if not draw(st.integers(0, 3)):
            request.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
        return request

    return build()


def well_formed(request: Any, styles: tuple[str, ...]) -> bool:
    """Whether the control protocol (docs/protocol.md) makes `request` succeed."""
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        return False
    if request["cmd"] == "set_style":
        return set(request) == {"cmd", "style"} and request["style"] in styles
    if request["cmd"] in ("set_strength", "set_smoothing"):
        return (set(request) <= {"cmd", "value", "style"} and a_fraction(request.get("value"))
                and request.get("style", styles[0]) in (*styles, None))
    return request["cmd"] in COMMANDS and set(request) == {"cmd"}


def a_fraction(value: Any) -> bool:
    """A JSON number from 0 to 1 (a boolean is not a number; NaN is not from 0 to 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def decoded(frames: list[bytes]) -> Any:
    """What the server should make of these frames, or None if they are not one JSON value."""
    if len(frames) != 1:
        return None
    try:
        return json.loads(frames[0].decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None


def check_reply(reply: Any, request: Any, styles: tuple[str, ...], sent: Any = None) -> None:
    """The reply to `request` (the decoded JSON sent, None if it was not one JSON value)."""
    shown = repr(request if sent is None else sent)
    shown = shown if len(shown) < 200 else shown[:200] + "..."
    assert reply is not None, f"no reply to {shown}"
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    should_succeed = well_formed(request, styles)
    if reply["ok"]:
        assert should_succeed, f"{shown} was accepted: {reply}"
        return
    error = reply.get("error")
    assert isinstance(error, str) and error.strip(), reply
    assert len(error.splitlines()) == 1, f"not one line: {error!r}"
    assert set(reply) == {"ok", "error"}, reply
    assert not should_succeed, f"{shown} was refused: {reply}"
    if not isinstance(request, dict):  # the error says what is wrong with the request itself
        assert "request" in error, f"{shown}: {error!r}"


@contextmanager
def fake_control_server(endpoint: str):
    """A real ControlServer in its own thread, FakeDaemon behind it, MAXMSGSIZE = LIMIT."""
    context = zmq.Context()
    server = ServerThread(context, endpoint, FakeDaemon(), max_message_bytes=LIMIT)
    try:
        yield context, server
        status = ask(context, server.endpoint, json.dumps({"cmd": "status"}).encode())
        assert status is not None and status["ok"] is True, status
        assert server.is_alive()
    finally:
        server.stop()
        context.destroy(linger=0)


@pytest.fixture
def ipc_control(folder):
    return f"ipc://{folder}/control"


# --- the in-process server ------------------------------------------------------------------


def test_random_frames_get_a_reply(ipc_control):
    sent = []
    with fake_control_server(ipc_control) as (context, server):

        @FUZZ
        @given(st.lists(st.binary(max_size=LIMIT // 4), min_size=1, max_size=3)
               | st.lists(st.binary(max_size=LIMIT), min_size=1, max_size=1))
        @example([b"1" * 5000])  # an integer Python refuses to parse (int_max_str_digits)
        @example([b'{"cmd": "status"}' + b" " * (LIMIT - 17)])  # exactly at the limit
        @example([b'{"cmd": "pause"}', b""])
        def run(frames: list[bytes]) -> None:
            check_reply(ask(context, server.endpoint, *frames), decoded(frames), FAKE_STYLES,
                        frames)
            sent.append(frames)

        run()
        assert server.handled == len(sent)  # every request answered exactly once


def test_random_json_values_get_a_reply(ipc_control):
    sent = []
    with fake_control_server(ipc_control) as (context, server):

        @FUZZ
        @given(json_values)
        def run(value: Any) -> None:
            check_reply(ask(context, server.endpoint, json.dumps(value).encode()), value,
                        FAKE_STYLES)
            sent.append(value)

        run()
        assert server.handled == len(sent)


def test_command_like_objects_get_the_right_reply(ipc_control):
    sent = []
    with fake_control_server(ipc_control) as (context, server):

        @FUZZ
        @given(command_dicts(FAKE_STYLES))
        @example({"cmd": "set_style", "style": "udnie"})
        @example({"cmd": "set_style", "style": "x\ny\u2028z"})
        @example({"cmd": "status", "\n": None})
        @example({"cmd": ["status"]})
        @example({"cmd": "set_style", "style": float("nan")})
        def run(request: dict) -> None:
            payload = json.dumps(request).encode()  # NaN/Infinity kept: Python clients send them
            check_reply(ask(context, server.endpoint, payload), request, FAKE_STYLES)
            sent.append(request)

        run()
        assert server.handled == len(sent)


def sized_request(size: int) -> bytes:
    """A set_style request of exactly `size` bytes."""
    empty = json.dumps({"cmd": "set_style", "style": ""}).encode()
    return json.dumps({"cmd": "set_style", "style": "x" * (size - len(empty))}).encode()


def test_sizes_around_the_limit(ipc_control):
    """Up to the limit a request is answered; above it libzmq drops that client's connection
    (see also test_control.py::test_oversized_request_drops_that_client_and_the_next_one_is_served)
    and the next client is served."""
    dropped = []
    with fake_control_server(ipc_control) as (context, server):

        @settings(FUZZ, max_examples=40)
        @given(st.integers(LIMIT - 32, LIMIT + 32))
        @example(LIMIT)
        @example(LIMIT + 1)
        def run(size: int) -> None:
            payload = sized_request(size)
            assert len(payload) == size
            if size <= LIMIT:
                check_reply(ask(context, server.endpoint, payload), decoded([payload]),
                            FAKE_STYLES, size)
                return
            oversized = context.socket(zmq.REQ)
            try:
                oversized.connect(server.endpoint)
                oversized.send(payload)
                after = ask(context, server.endpoint, b'{"cmd": "styles"}')
                assert after is not None and after["ok"] is True, after
                assert not oversized.poll(200), f"a {size}-byte request was answered"
            finally:
                oversized.close(linger=0)
            dropped.append(size)

        run()
        assert dropped, "no oversized request was tried"


def raw_connection(endpoint: str) -> socket.socket:
    if endpoint.startswith("ipc://"):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(endpoint.removeprefix("ipc://"))
        return conn
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=WAIT_S)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_garbage_on_the_wire_does_not_stop_the_server(ipc_control, transport):
    """Bytes that are not ZMTP at all (a port scanner, a confused client), then a real client."""
    endpoint = ipc_control if transport == "ipc" else "tcp://127.0.0.1:*"
    with fake_control_server(endpoint) as (context, server):

        @settings(FUZZ, max_examples=150)
        @given(st.binary(min_size=1, max_size=512))
        @example(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00NULL" + b"\x00" * 60)  # ZMTP-ish
        def run(garbage: bytes) -> None:
            with raw_connection(server.endpoint) as conn:
                conn.sendall(garbage)
            reply = ask(context, server.endpoint, b'{"cmd": "status"}')
            assert reply is not None and reply["ok"] is True, reply

        run()


# --- a real stylecastd ----------------------------------------------------------------------


def test_a_real_daemon_survives_fuzzed_commands(daemon_with, folder):
    models = {name: write_tiny_model(folder / f"{name}.onnx", style=name)
              for name in ("invert", "warm")}
    config = folder / "styles.toml"
    config.write_text("[styles]\nactive = \"invert\"\n[styles.models]\n"
                      + "".join(f'{name} = "{path}"\n' for name, path in models.items()))
    daemon = daemon_with("--config", str(config), "--source", "test://?width=64&height=48&fps=30",
                         watchdog_usec=None)
    daemon.notify.wait_for("READY=1")
    styles = tuple(models)
    examples = []

    @settings(FUZZ, max_examples=50)
    @given(command_dicts(styles) | json_values)
    @example({"cmd": "set_style", "style": "warm"})
    @example({"cmd": "set_style", "style": "../" * 20 + "etc/passwd"})
    @example({"cmd": "pause", "please": True})
    @example({"cmd": "pause"})
    @example({"cmd": "set_strength", "value": 0.5, "style": "warm"})
    @example({"cmd": "set_smoothing", "value": float("nan")})
    @example({"cmd": "set_strength", "value": True})
    def run(request: Any) -> None:
        check_reply(daemon.request(json.dumps(request).encode()), request, styles)
        examples.append(request)
        if len(examples) % 10 == 0:
            daemon.notify.drain()  # a full NOTIFY_SOCKET queue would slow the daemon down

    run()
    assert len(examples) >= 50
    assert daemon.request({"cmd": "resume"}) == {"ok": True, "paused": False}
    status = daemon.request({"cmd": "status"})
    assert status["ok"] and status["style"] in styles and status["paused"] is False
    _, header, _ = receive(daemon.subscribe(b"stylized"))  # frames flow again
    assert header["style"] == status["style"] and daemon.process.poll() is None
