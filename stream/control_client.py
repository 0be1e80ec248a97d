"""The client side of the daemon's control socket (docs/protocol.md, "Control"): one JSON
request on a fresh REQ socket, one JSON reply. stylecast-ctl and stylecast-sub's control page
both talk to the daemon through `request`.
"""

from __future__ import annotations

import json

import zmq

from stylecast.core.errors import ConfigError, StylecastError
from stylecast.stream.endpoints import ipc_path
from stylecast.stream.security import ClientKeys, make_curve_client

DEFAULT_TIMEOUT_S = 3.0


def request(endpoint: str, payload: dict, timeout_s: float = DEFAULT_TIMEOUT_S, *,
            context: zmq.Context | None = None, curve: ClientKeys | None = None) -> dict:
    """Send one control request and return the daemon's reply (which may say "ok": false).

    `curve`: connect as a CURVE client (a tcp control endpoint of a daemon with [security] set).
    Raises StylecastError when no daemon answers within `timeout_s` (which is also what a client
    the daemon does not let in sees) or the reply is not a JSON object, ConfigError when the
    endpoint cannot be used.
    """
    path = ipc_path(endpoint)
    if path is not None and not path.exists():
        raise StylecastError(f"no control socket at {path} (is stylecastd running?)")
    own_context = context is None
    context = zmq.Context() if context is None else context
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        try:
            if curve is not None:
                make_curve_client(sock, curve)
            sock.connect(endpoint)
        except zmq.ZMQError as err:
            raise ConfigError(f"cannot connect to control endpoint {endpoint!r}: "
                              f"{zmq.strerror(err.errno)}") from None
        sock.send(json.dumps(payload).encode())
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            hint = ", with this client's key authorized" if curve is not None else ""
            raise StylecastError(f"no reply from {endpoint} within {timeout_s:g} s "
                                 f"(is stylecastd running{hint}?)")
        return decode_reply(sock.recv(), endpoint)
    finally:
        sock.close(linger=0)
        if own_context:
            context.term()


def decode_reply(data: bytes, endpoint: str) -> dict:
    try:
        reply = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        reply = None
    if not isinstance(reply, dict):
        raise StylecastError(f"the reply from {endpoint} is not a JSON object")
    return reply
