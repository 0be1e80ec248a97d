"""The control socket: real ZeroMQ REP/REQ over ipc and tcp, a fake daemon behind it."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import stat
from pathlib import Path

import pytest
import zmq

from stylecast.core.errors import ConfigError
from stylecast.daemon.control import (
    ControlError,
    ControlServer,
    encode_reply,
    handle_request,
)
from stylecast.stream import endpoints
from stylecast.stream.endpoints import (
    default_control_endpoint,
    default_runtime_dir,
    ipc_path,
    prepare_ipc_endpoint,
)

from support.fake_daemon import FakeDaemon, ServerThread, ask


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def serve(context):
    """serve(endpoint, handler=None, **options) -> a running ServerThread, stopped afterwards."""
    servers: list[ServerThread] = []

    def start(endpoint: str, handler=None, **options) -> ServerThread:
        server = ServerThread(context, endpoint, handler or FakeDaemon(), **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def command(context: zmq.Context, endpoint: str, **request) -> dict:
    reply = ask(context, endpoint, json.dumps(request).encode())
    assert reply is not None, f"no reply to {request}"
    return reply


def ipc_endpoint(tmp_path: Path, name: str = "control") -> str:
    return f"ipc://{tmp_path / name}"


@pytest.fixture(params=["ipc", "tcp"])
def endpoint(request, tmp_path) -> str:
    return ipc_endpoint(tmp_path) if request.param == "ipc" else "tcp://127.0.0.1:*"


def test_every_command_is_served(context, serve, endpoint):
    daemon = FakeDaemon()
    server = serve(endpoint, daemon)
    assert command(context, server.endpoint, cmd="status") == {
        "ok": True, "style": "mosaic", "paused": False, "fps": 29.5,
    }
    assert command(context, server.endpoint, cmd="styles") == {
        "ok": True, "styles": ["mosaic", "udnie"], "current": "mosaic",
    }
    assert command(context, server.endpoint, cmd="set_style", style="udnie") == {
        "ok": True, "style": "udnie",
    }
    assert command(context, server.endpoint, cmd="pause") == {"ok": True, "paused": True}
    assert command(context, server.endpoint, cmd="status")["paused"] is True
    assert command(context, server.endpoint, cmd="resume") == {"ok": True, "paused": False}
    assert (daemon.style, daemon.paused) == ("udnie", False)


def test_tcp_wildcard_port_resolves_to_the_bound_port(serve):
    server = serve("tcp://127.0.0.1:*")
    host, port = server.endpoint.removeprefix("tcp://").rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0


MALFORMED = [
    ([b"\xff\xfe{}"], "request is not UTF-8"),
    ([b"{not json"], "request is not JSON"),
    ([b""], "request is not JSON"),
    ([b"[1, 2]"], "request must be a JSON object, got array: [1, 2]"),
    ([b'"status"'], 'request must be a JSON object, got string: "status"'),
    ([b"true"], "request must be a JSON object, got boolean: true"),
    ([b"null"], "request must be a JSON object, got null: null"),
    ([b"[" * 50_000], "nested too deeply"),
    ([b"{}"], "request has no 'cmd'"),
    ([b'{"style": "udnie"}'], "request has no 'cmd'"),
    ([b'{"cmd": "reboot"}'], 'unknown cmd "reboot" (expected one of: status, styles, set_style'),
    ([b'{"cmd": 5}'], "unknown cmd 5"),
    ([b'{"cmd": "set_style"}'], "'set_style' needs argument 'style'"),
    ([b'{"cmd": "set_style", "style": 7}'], "'set_style' argument 'style' = 7"),
    ([b'{"cmd": "set_style", "style": ""}'], "'set_style' argument 'style' = \"\""),
    ([b'{"cmd": "status", "verbose": true}'], "'status' takes no argument 'verbose'"),
    ([b'{"cmd": "set_strength"}'], "'set_strength' needs argument 'value'"),
    ([b'{"cmd": "set_strength", "value": 1.01}'],
     "'set_strength' argument 'value' = 1.01: Input should be less than or equal to 1"),
    ([b'{"cmd": "set_smoothing", "value": -1}'],
     "'set_smoothing' argument 'value' = -1: Input should be greater than or equal to 0"),
    ([b'{"cmd": "set_strength", "value": true}'],
     "'set_strength' argument 'value' = true: Input should be a valid number"),
    ([b'{"cmd": "set_strength", "value": NaN}'], "'set_strength' argument 'value' = NaN"),
    ([b'{"cmd": "set_smoothing", "value": 0.5, "style": ""}'],
     "'set_smoothing' argument 'style' = \"\""),
    ([b'{"cmd": "set_smoothing", "value": 0.5, "style": "nope"}'], "unknown style 'nope'"),
    ([b'{"cmd": "status"}', b'{"cmd": "status"}'], "multipart request (2 frames)"),
]


@pytest.mark.parametrize(("frames", "expected"), MALFORMED)
def test_malformed_requests_get_a_one_line_error(frames, expected):
    daemon = FakeDaemon()
    reply = handle_request(frames, daemon)
    assert reply["ok"] is False and set(reply) == {"ok", "error"}
    assert expected in reply["error"]
    assert "\n" not in reply["error"]
    assert (daemon.style, daemon.paused) == ("mosaic", False)


def test_server_answers_garbage_and_keeps_serving(context, serve, tmp_path):
    server = serve(ipc_endpoint(tmp_path))
    for frames, expected in MALFORMED:
        reply = ask(context, server.endpoint, *frames)
        assert reply is not None, f"no reply to {frames!r}"
        assert reply["ok"] is False and expected in reply["error"]
    assert command(context, server.endpoint, cmd="status")["ok"] is True
    assert server.handled == len(MALFORMED) + 1


def test_refused_command_replies_with_the_handlers_message(context, serve, endpoint):
    server = serve(endpoint)
    assert command(context, server.endpoint, cmd="set_style", style="nope") == {
        "ok": False, "error": "unknown style 'nope' (known: mosaic, udnie)",
    }
    assert command(context, server.endpoint, cmd="styles")["current"] == "mosaic"


def test_handler_crash_is_an_internal_error_reply_logged_with_traceback(
    context, serve, tmp_path, caplog
):
    daemon = FakeDaemon()
    daemon.crash = RuntimeError("camera on fire")
    server = serve(ipc_endpoint(tmp_path), daemon)
    with caplog.at_level(logging.ERROR, logger="stylecast.daemon.control"):
        reply = command(context, server.endpoint, cmd="status")
    assert reply == {"ok": False, "error": "internal error: RuntimeError: camera on fire"}
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "status" in logged[0].getMessage()
    assert command(context, server.endpoint, cmd="styles")["ok"] is True


def test_controlerror_message_is_kept_on_one_line():
    class Refusing(FakeDaemon):
        def pause(self) -> dict:
            raise ControlError("cannot pause:\nthe engine is still building")

    reply = handle_request([b'{"cmd": "pause"}'], Refusing())
    assert reply == {"ok": False, "error": "cannot pause: the engine is still building"}


def test_handler_returning_a_non_dict_is_an_internal_error():
    class Broken(FakeDaemon):
        def styles(self):
            return ["mosaic"]

    reply = handle_request([b'{"cmd": "styles"}'], Broken())
    assert reply["ok"] is False
    assert reply["error"].startswith("internal error: TypeError: styles() returned list")


def test_handler_cannot_override_ok():
    class Sneaky(FakeDaemon):
        def resume(self) -> dict:
            return {"ok": False, "paused": False}

    assert handle_request([b'{"cmd": "resume"}'], Sneaky()) == {"ok": True, "paused": False}


@pytest.mark.parametrize("value", [math.nan, object()])
def test_reply_that_is_not_json_becomes_an_error_reply(value):
    reply = json.loads(encode_reply({"ok": True, "fps": value}))
    assert reply["ok"] is False and reply["error"].startswith("internal error: reply is not JSON")


def test_oversized_request_drops_that_client_and_the_next_one_is_served(
    context, serve, tmp_path
):
    server = serve(ipc_endpoint(tmp_path), max_message_bytes=1024)
    oversized = json.dumps({"cmd": "set_style", "style": "x" * 4096}).encode()
    assert ask(context, server.endpoint, oversized, timeout_s=1.0) is None
    assert command(context, server.endpoint, cmd="status")["style"] == "mosaic"
    assert server.is_alive() and server.handled == 1


def test_stale_ipc_socket_file_is_replaced(context, serve, tmp_path):
    path = tmp_path / "control"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
        leftover.bind(str(path))  # bound, never listening: what a killed process leaves
    assert stat.S_ISSOCK(path.lstat().st_mode)
    server = serve(ipc_endpoint(tmp_path))
    assert command(context, server.endpoint, cmd="status")["ok"] is True


def test_live_ipc_socket_is_refused_and_keeps_working(context, serve, tmp_path):
    first = serve(ipc_endpoint(tmp_path))
    with pytest.raises(ConfigError) as refused:
        ControlServer(context, ipc_endpoint(tmp_path), FakeDaemon())
    assert str(refused.value) == (
        f"control endpoint 'ipc://{tmp_path / 'control'}' is in use by another process "
        "(is stylecastd already running?)"
    )
    assert command(context, first.endpoint, cmd="status")["ok"] is True


def test_ipc_path_that_is_not_a_socket_is_refused(context, tmp_path):
    (tmp_path / "control").write_text("my notes\n")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        ControlServer(context, ipc_endpoint(tmp_path), FakeDaemon())
    assert (tmp_path / "control").read_text() == "my notes\n"


def test_ipc_directory_is_created_with_mode_0750(context, serve, tmp_path):
    server = serve(f"ipc://{tmp_path / 'run' / 'stylecast' / 'control'}")
    assert stat.S_IMODE((tmp_path / "run" / "stylecast").stat().st_mode) == 0o750
    assert command(context, server.endpoint, cmd="status")["ok"] is True


def test_close_removes_its_own_socket_file_only(context, tmp_path):
    path = tmp_path / "control"
    server = ControlServer(context, ipc_endpoint(tmp_path), FakeDaemon())
    assert stat.S_ISSOCK(path.lstat().st_mode)
    server.close()
    assert not path.exists()

    other = ControlServer(context, ipc_endpoint(tmp_path), FakeDaemon())
    path.unlink()
    path.write_text("someone else's\n")
    other.close()
    assert path.read_text() == "someone else's\n"


def test_tcp_port_in_use_names_the_endpoint(context):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(ConfigError) as refused:
            ControlServer(context, endpoint, FakeDaemon())
    message = str(refused.value)
    assert message == f"cannot bind control endpoint {endpoint!r}: Address already in use"


def test_bad_endpoint_is_a_config_error(context):
    with pytest.raises(ConfigError, match=r"cannot bind control endpoint 'bogus://x': "):
        ControlServer(context, "bogus://x", FakeDaemon())


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("ipc:///run/stylecast/control", Path("/run/stylecast/control")),
        ("ipc://relative/control", Path("relative/control")),
        ("ipc://@abstract", None),
        ("ipc://*", None),
        ("tcp://127.0.0.1:5555", None),
    ],
)
def test_ipc_path(endpoint, expected):
    assert ipc_path(endpoint) == expected


def test_prepare_ignores_endpoints_without_a_file(tmp_path):
    prepare_ipc_endpoint("tcp://127.0.0.1:5555", "publish endpoint")
    prepare_ipc_endpoint("ipc://@stylecast-test", "publish endpoint")


def test_publish_endpoint_is_named_in_the_in_use_error(context, tmp_path):
    endpoint = ipc_endpoint(tmp_path, "frames")
    publisher = context.socket(zmq.PUB)
    try:
        endpoints.bind(publisher, endpoint, "publish endpoint")
        with pytest.raises(ConfigError, match=r"^publish endpoint 'ipc://.*/frames' is in use"):
            prepare_ipc_endpoint(endpoint, "publish endpoint")
    finally:
        publisher.close(linger=0)


@pytest.fixture
def runtime_env(monkeypatch, tmp_path):
    """A clean slate for default_runtime_dir: no systemd or XDG variables, /run is `tmp/run`."""
    for name in ("RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    run = tmp_path / "run"
    monkeypatch.setattr(endpoints, "SYSTEM_RUN_DIR", run)
    return monkeypatch, run


def test_runtime_dir_prefers_systemds_runtime_directory(runtime_env):
    monkeypatch, _ = runtime_env
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/stylecast:/run/other")
    assert default_runtime_dir() == Path("/run/stylecast")
    assert default_control_endpoint() == "ipc:///run/stylecast/control"


def test_runtime_dir_uses_run_when_we_may_create_it(runtime_env):
    monkeypatch, run = runtime_env
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    run.mkdir()
    assert default_runtime_dir() == run / "stylecast"


def test_runtime_dir_uses_an_existing_run_stylecast_even_when_run_is_not_writable(runtime_env):
    monkeypatch, run = runtime_env
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    (run / "stylecast").mkdir(parents=True)
    # Stands in for a non-root user (root may write anywhere, so chmod cannot show it here).
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert default_runtime_dir() == run / "stylecast"


def test_runtime_dir_falls_back_to_xdg_then_tmp(runtime_env):
    monkeypatch, _ = runtime_env  # `SYSTEM_RUN_DIR` does not exist and cannot be written
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert default_runtime_dir() == Path("/run/user/1000/stylecast")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_runtime_dir() == Path(f"/tmp/stylecast-{os.getuid()}")
    assert default_control_endpoint() == f"ipc:///tmp/stylecast-{os.getuid()}/control"
