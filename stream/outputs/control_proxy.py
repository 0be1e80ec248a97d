"""The control page's way to the daemon: JSON over our own HTTP server, passed to the daemon's
control socket (docs/protocol.md, "Control") and its reply passed back.

    GET  /control/status   the daemon's status object
    GET  /control/styles   the configured styles, each with its strength and smoothing
    POST /control          one control command as a JSON object, e.g.
                           {"cmd": "set_strength", "value": 0.6}

There is no authentication: whoever reaches the HTTP port controls the daemon (the server binds
to loopback unless told otherwise). What a web page elsewhere could do through a visitor's
browser is kept out: a command must come as `Content-Type: application/json` (which an HTML
form cannot send, and which a cross-origin script may send only after a CORS preflight that
this server never grants), any `Origin` must be this server's own, and on a loopback server the
`Host` must be a loopback name (against DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import zmq

from stylecast.core.errors import StylecastError
from stylecast.stream.control_client import request
from stylecast.stream.security import ClientKeys

MAX_BODY_BYTES = 64 * 1024
READ_COMMANDS = {"/control/status": "status", "/control/styles": "styles"}
TIMEOUT_S = 10.0  # then HTTP 502: longer than stylecast-ctl's 3 s, a page can wait


class Refused(Exception):
    """An HTTP request refused before it reaches the daemon: status and a one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ControlProxy:
    """Passes commands to the control socket at `endpoint`; one REQ socket per request, so any
    number of HTTP threads may use it at once."""

    def __init__(self, endpoint: str, curve: ClientKeys | None = None, *,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.endpoint = endpoint
        # As stylecastd does: CURVE guards a tcp control socket; an ipc one has file modes.
        self.curve = curve if endpoint.startswith("tcp://") else None
        self.timeout_s = timeout_s
        self._context = zmq.Context()

    def ask(self, command: dict[str, Any]) -> tuple[HTTPStatus, dict[str, Any]]:
        """(200, the daemon's reply, "ok" true or false), or (502, an error reply) when the
        daemon does not answer."""
        try:
            reply = request(self.endpoint, command, self.timeout_s, context=self._context,
                            curve=self.curve)
        except StylecastError as err:
            return HTTPStatus.BAD_GATEWAY, {"ok": False, "error": str(err)}
        return HTTPStatus.OK, reply

    def close(self) -> None:
        self._context.destroy(linger=0)


def check_caller(headers: Any, *, loopback_server: bool) -> None:
    """Refused unless the request comes from this server's own page (see the module's text)."""
    host = headers.get("Host", "")
    if loopback_server and not is_loopback(urlsplit(f"//{host}").hostname or ""):
        raise Refused(HTTPStatus.FORBIDDEN, f"Host {host!r} is not this loopback server")
    origin = headers.get("Origin")
    if origin is not None and origin != f"http://{host}":
        raise Refused(HTTPStatus.FORBIDDEN, f"Origin {origin!r} is not this server")


def read_command(headers: Any, body: bytes) -> dict[str, Any]:
    """The JSON object a POST carries; Refused when it is not one."""
    content_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                      "send the command as JSON (Content-Type: application/json)")
    try:
        command = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        command = None
    if not isinstance(command, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "the body must be one JSON object")
    return command


def body_length(headers: Any) -> int:
    """The POST body's announced length; Refused when missing or over MAX_BODY_BYTES."""
    text = headers.get("Content-Length", "")
    if not text.isdigit():
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is needed")
    if int(text) > MAX_BODY_BYTES:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"a command is at most {MAX_BODY_BYTES} bytes")
    return int(text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
