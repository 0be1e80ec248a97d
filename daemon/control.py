"""The daemon's control socket: a ZeroMQ REP server taking one JSON command per request.

Requests (one single-frame UTF-8 JSON object each):

    {"cmd": "status"}   {"cmd": "styles"}   {"cmd": "set_style", "style": NAME}
    {"cmd": "pause"}    {"cmd": "resume"}
    {"cmd": "set_strength", "value": 0..1}      {"cmd": "set_smoothing", "value": 0..1}
        (each with an optional "style": NAME; the active style without it)

Replies are `{"ok": true, ...}` with the handler's fields, or `{"ok": false, "error": "..."}`
with a one-line reason. Every received request gets a reply, whatever it contains: a REP socket
that does not answer is stuck for good. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import zmq
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from stylecast.core.validation import problems
from stylecast.stream.endpoints import bind, ipc_socket_identity, remove_ipc_socket

if TYPE_CHECKING:
    from stylecast.stream.security import CurveServer

log = logging.getLogger(__name__)

WHAT = "control endpoint"


class ControlError(Exception):
    """A command the daemon refuses (unknown style, ...): the message goes back to the client."""


class Controlled(Protocol):
    """What the daemon offers to the control socket; each returns the reply's fields."""

    def status(self) -> dict: ...
    def styles(self) -> dict: ...
    def set_style(self, name: str) -> dict: ...
    def pause(self) -> dict: ...
    def resume(self) -> dict: ...
    def set_strength(self, value: float, style: str | None) -> dict: ...
    def set_smoothing(self, value: float, style: str | None) -> dict: ...


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusRequest(_Request):
    cmd: Literal["status"]


class StylesRequest(_Request):
    cmd: Literal["styles"]


class SetStyleRequest(_Request):
    cmd: Literal["set_style"]
    style: str = Field(min_length=1)


class PauseRequest(_Request):
    cmd: Literal["pause"]


class ResumeRequest(_Request):
    cmd: Literal["resume"]


# A number from 0 to 1: JSON true, "0.5" or NaN are refused, not read as one.
Fraction = Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]


class SetStrengthRequest(_Request):
    cmd: Literal["set_strength"]
    value: Fraction
    style: str | None = Field(default=None, min_length=1)  # None: the active style


class SetSmoothingRequest(_Request):
    cmd: Literal["set_smoothing"]
    value: Fraction
    style: str | None = Field(default=None, min_length=1)


Request = Annotated[
    StatusRequest | StylesRequest | SetStyleRequest | PauseRequest | ResumeRequest
    | SetStrengthRequest | SetSmoothingRequest,
    Field(discriminator="cmd"),
]
REQUEST = TypeAdapter(Request)
COMMANDS = ("status", "styles", "set_style", "pause", "resume", "set_strength", "set_smoothing")


def error_reply(message: str) -> dict:
    return {"ok": False, "error": " ".join(str(message).splitlines())}


def parse_request(parts: list[bytes]) -> Request:
    """Request frames -> a validated request; ValueError with a one-line reason otherwise."""
    if len(parts) != 1:
        raise ValueError(f"multipart request ({len(parts)} frames): send one JSON object "
                         "in a single frame")
    try:
        text = bytes(parts[0]).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"request is not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        obj = json.loads(text)
    except ValueError as err:  # JSONDecodeError, or an integer too long for int_max_str_digits
        raise ValueError(f"request is not JSON ({err})") from None
    except RecursionError:
        raise ValueError("request JSON is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ValueError(f"request must be a JSON object, got {json_type(obj)}: {_preview(obj)}")
    try:
        return REQUEST.validate_python(obj)
    except ValidationError as err:
        raise ValueError(describe_invalid(err, obj)) from None


def describe_invalid(err: ValidationError, obj: dict) -> str:
    """One line for a request that failed validation, with the discriminator tag left out."""
    expected = ", ".join(COMMANDS)
    kinds = {item["type"] for item in err.errors()}
    if "union_tag_not_found" in kinds:
        return f"request has no 'cmd' (expected one of: {expected})"
    if "union_tag_invalid" in kinds:
        return f"unknown cmd {_preview(obj.get('cmd'))} (expected one of: {expected})"
    cmd = obj["cmd"]
    parts = []
    for problem in problems(err):
        key = problem.key.removeprefix(f"{cmd}.")
        if problem.kind == "missing":
            parts.append(f"'{cmd}' needs argument '{key}'")
        elif problem.kind == "extra_forbidden":
            parts.append(f"'{cmd}' takes no argument '{key}'")
        else:
            parts.append(f"'{cmd}' argument '{key}' = {_preview(problem.value)}: "
                         f"{problem.message}")
    return "; ".join(parts)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for clients not written in Python."""
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), "null")


def _preview(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if _is_json(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def dispatch(request: Request, handler: Controlled) -> dict:
    if isinstance(request, SetStyleRequest):
        return handler.set_style(request.style)
    if isinstance(request, SetStrengthRequest | SetSmoothingRequest):
        return getattr(handler, request.cmd)(request.value, request.style)
    return getattr(handler, request.cmd)()


def handle_request(parts: list[bytes], handler: Controlled) -> dict:
    """Request frames -> reply dict. Never raises: every outcome is a reply."""
    try:
        request = parse_request(parts)
    except ValueError as err:
        return error_reply(str(err))
    try:
        result = dispatch(request, handler)
        if not isinstance(result, dict):
            raise TypeError(f"{request.cmd}() returned {type(result).__name__}, not a dict")
    except ControlError as err:
        return error_reply(str(err))
    except Exception as err:
        log.exception("control command %r failed", request.cmd)
        return error_reply(f"internal error: {type(err).__name__}: {err}")
    return {"ok": True, **{key: value for key, value in result.items() if key != "ok"}}


def encode_reply(reply: dict) -> bytes:
    """Strict JSON (no NaN) as UTF-8; a reply that cannot be encoded becomes an error reply."""
    try:
        return json.dumps(reply, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        log.error("control reply cannot be sent as JSON: %s: %r", err, reply)
        return json.dumps(error_reply(f"internal error: reply is not JSON: {err}")).encode()


class ControlServer:
    """A REP socket bound to `endpoint` that answers control requests with `handler`.

    Use it from one thread only (zmq sockets are not thread-safe): call serve_once() in a loop
    and close() from that same thread.

    Requests larger than `max_message_bytes` (per frame, ZMQ_MAXMSGSIZE) never reach us:
    libzmq drops the sending peer's connection, so that client gets no reply and times out,
    while the server goes on serving everyone else.

    With `curve`, only CURVE clients whose key the authenticator knows are let in.
    """

    def __init__(self, context: zmq.Context, endpoint: str, handler: Controlled, *,
                 max_message_bytes: int = 65536, curve: CurveServer | None = None) -> None:
        self.handler = handler
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        if curve is not None:
            curve.apply(self.socket)
        try:
            self.endpoint = bind(self.socket, endpoint, WHAT)
        except BaseException:
            self.socket.close(linger=0)
            raise
        self._socket_file = ipc_socket_identity(self.endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        log.info("control socket listening on %s", self.endpoint)

    def serve_once(self, timeout_ms: int) -> bool:
        """Wait up to `timeout_ms` for a request and answer it; True if one was answered."""
        if not dict(self._poller.poll(timeout_ms)).get(self.socket):
            return False
        try:
            parts = self.socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return False
        try:
            reply = handle_request(parts, self.handler)
        except Exception as err:  # handle_request does not raise; a REP must answer regardless
            log.exception("control request handling failed")
            reply = error_reply(f"internal error: {type(err).__name__}: {err}")
        self.socket.send(encode_reply(reply))
        return True

    def close(self) -> None:
        """Close the socket and remove its ipc socket file (libzmq leaves it behind)."""
        self.socket.close(linger=0)
        remove_ipc_socket(self.endpoint, self._socket_file)
