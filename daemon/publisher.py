"""The frame publisher: one XPUB socket bound on every configured endpoint.

XPUB instead of PUB so the daemon hears subscriptions: a topic nobody subscribes to is not
encoded or sent (a JPEG encode is the costliest step after inference). Like PUB it never blocks:
a subscriber that falls SNDHWM messages behind simply misses frames.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import zmq

from stylecast.daemon.config import PublishSettings
from stylecast.stream.endpoints import bind, ipc_socket_identity, remove_ipc_socket
from stylecast.stream.protocol import pack

if TYPE_CHECKING:
    from stylecast.stream.security import CurveServer

log = logging.getLogger(__name__)

# Below this size pyzmq copies anyway, and zero-copy only adds bookkeeping (pyzmq's perf notes).
ZERO_COPY_BYTES = zmq.COPY_THRESHOLD


class Publisher:
    """Sends [topic, header, payload] messages; knows which topic prefixes have subscribers.

    With `curve`, every endpoint of the socket (ipc ones too) takes CURVE clients only.
    """

    def __init__(self, context: zmq.Context, settings: PublishSettings, *,
                 curve: CurveServer | None = None) -> None:
        self.settings = settings
        self.socket = context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, settings.sndhwm)
        self.socket.setsockopt(zmq.RCVHWM, 1000)  # subscription messages, not frames
        if curve is not None:
            curve.apply(self.socket)
        # Replaced, never mutated: the control thread reads it while the publish thread updates it.
        self._prefixes: frozenset[bytes] = frozenset()
        self.endpoints: list[str] = []  # as bound: a `tcp://host:*` endpoint gets its real port
        self._socket_files: dict[str, tuple[int, int] | None] = {}
        try:
            for endpoint in settings.endpoints:
                bound = bind(self.socket, endpoint, "publish endpoint")
                self.endpoints.append(bound)
                self._socket_files[bound] = ipc_socket_identity(bound)
        except Exception:
            self.close()
            raise

    def poll_subscriptions(self) -> None:
        """Take in (un)subscriptions: b'\\x01prefix' subscribes, b'\\x00prefix' unsubscribes."""
        while True:
            try:
                message = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not message:
                continue
            prefix = message[1:]
            if message[0] == 1:
                self._prefixes = self._prefixes | {prefix}
            elif message[0] == 0:
                self._prefixes = self._prefixes - {prefix}
            log.debug("subscriptions now %s", sorted(self._prefixes))

    def wanted(self, topic: bytes) -> bool:
        return any(topic.startswith(prefix) for prefix in self._prefixes)

    def subscriptions(self) -> list[str]:
        return sorted(p.decode("utf-8", "replace") for p in self._prefixes)

    def send(self, topic: bytes, header: dict[str, Any], payload: Any) -> None:
        *head, body = pack(topic, header, payload)
        for part in head:
            self.socket.send(part, zmq.SNDMORE | zmq.NOBLOCK)
        self.socket.send(body, zmq.NOBLOCK, copy=memoryview(body).nbytes < ZERO_COPY_BYTES)

    def close(self) -> None:
        """Close the socket and remove its ipc socket files (libzmq leaves them behind)."""
        self.socket.close(linger=0)
        for endpoint, identity in self._socket_files.items():
            remove_ipc_socket(endpoint, identity)
