"""The Python client for stylecastd's frame stream (docs/protocol.md): newest frame, never a queue.

A background reader thread owns the SUB socket and receives as fast as messages come, keeping
only the newest one in a one-frame slot. The consumer takes from the slot whenever it is ready,
so however slow it is, it gets a fresh frame and never a backlog; frames overwritten in the slot
are counted as skipped and never decoded. Needs only numpy, pyzmq and (for JPEG) simplejpeg.

    with Subscriber("tcp://127.0.0.1:5555") as sub:
        for frame in sub:
            use(frame.image)   # (H, W, 3) uint8 RGB
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import zmq

from stylecast.core.errors import ConfigError, StylecastError
from stylecast.stream.meters import LatencyWindow, RateMeter
from stylecast.stream.protocol import STATS, decode_image, parse
from stylecast.stream.security import ClientKeys, make_curve_client

log = logging.getLogger(__name__)

RCVHWM = 2  # the slot is the buffer; a deeper socket queue would only hold stale frames
POLL_MS = 100  # how often the reader looks at its stop flag and the stale timer
_EVENT_NAMES = {zmq.EVENT_HANDSHAKE_FAILED_AUTH: "authentication refused",
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol error",
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no detail"}
# A completed handshake is a usable connection; a mere TCP connect is not (CURVE may refuse it).
MONITORED_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | functools.reduce(operator.or_, _EVENT_NAMES)


class SubscriberClosed(StylecastError):
    """next() on a subscriber that was closed (or never started)."""


@dataclass(frozen=True)
class Frame:
    """One message as delivered: `image` is the decoded RGB picture (None for `stats`).

    For rgb24/bgr24 payloads `image` is a read-only view of `payload`; copy it to change it.
    """

    topic: str
    header: dict[str, Any]
    payload: bytes
    image: np.ndarray | None
    received_ns: int  # time.monotonic_ns() when the reader thread got the message

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    @property
    def age_ms(self) -> float:
        """Milliseconds from capture (publish, for stats) until now; same host only."""
        return (time.monotonic_ns() - _origin_ns(self.header)) / 1e6

    def json(self) -> Any:
        """The payload parsed as JSON: the stats object of a `stats` message."""
        return json.loads(self.payload.decode("utf-8"))


def _origin_ns(header: dict[str, Any]) -> int:
    return int(header.get("t_capture_ns", header.get("t_publish_ns", 0)))


class _Message(NamedTuple):
    topic: str
    header: dict[str, Any]
    payload: bytes
    received_ns: int


class _Counters:
    """What the reader thread counts; guarded by the subscriber's condition."""

    def __init__(self) -> None:
        self.received = 0
        self.skipped = 0
        self.gaps = 0
        self.invalid = 0
        self.reconnects = 0
        self.restarts = 0
        self.handshake_failures = 0  # e.g. the server refused our CURVE key
        self.last_seq: dict[str, int] = {}

    def count_seq(self, topic: str, seq: int) -> None:
        last = self.last_seq.get(topic)
        if last is not None:
            if seq <= last:
                self.restarts += 1  # seq starts at 1 on every daemon run
            elif seq > last + 1:
                self.gaps += seq - last - 1
        self.last_seq[topic] = seq


class Subscriber:
    """Subscribes to one topic (a prefix, as in ZeroMQ) and hands out only the newest message."""

    def __init__(self, endpoint: str, topic: str = "stylized", *, curve: ClientKeys | None = None,
                 context: zmq.Context | None = None, stale_after_s: float = 5.0,
                 timeout_s: float | None = None) -> None:
        self.endpoint = endpoint
        self.topic = topic
        self.curve = curve
        self.stale_after_s = stale_after_s
        self.timeout_s = timeout_s  # what iteration waits for each frame; None: forever
        self._own_context = context is None
        self._context = context
        self._cond = threading.Condition()
        self._slot: _Message | None = None
        self._counts = _Counters()
        self._delivered = RateMeter()
        self._ages = LatencyWindow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Subscriber:
        if self._thread is not None:
            return self
        if self._context is None:
            self._context = zmq.Context()
        try:
            sockets = self._connect()  # here, so a bad endpoint raises in the caller's thread
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._read, args=sockets, daemon=True,
                                        name=f"stylecast-sub {self.endpoint}")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader and close its socket; next() then raises SubscriberClosed."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._own_context and self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- consuming -------------------------------------------------------------------------------

    def next(self, timeout_s: float | None = None) -> Frame:
        """The newest message not yet returned; TimeoutError if none comes within `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            message = self._take(deadline, timeout_s)
            try:
                image = _decode(message)
            except ValueError as err:  # a payload that does not match its header
                log.debug("skipping an undecodable %s message: %s", message.topic, err)
                with self._cond:
                    self._counts.invalid += 1
                continue
            frame = Frame(message.topic, message.header, message.payload, image,
                          message.received_ns)
            self._delivered.tick()
            self._ages.add(frame.age_ms)
            return frame

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.next(self.timeout_s)
            except SubscriberClosed:
                return

    def stats(self) -> dict[str, Any]:
        ages = self._ages.percentiles()
        with self._cond:
            counts = self._counts
            return {"received": counts.received, "delivered": self._delivered.total,
                    "skipped": counts.skipped, "gaps": counts.gaps, "invalid": counts.invalid,
                    "fps": round(self._delivered.rate(), 2),
                    "age_ms": {"p50": ages["p50"], "p95": ages["p95"]},
                    "reconnects": counts.reconnects, "restarts": counts.restarts,
                    "handshake_failures": counts.handshake_failures}

    def _take(self, deadline: float | None, timeout_s: float | None) -> _Message:
        with self._cond:
            while True:
                if self._thread is None or self._stop.is_set():
                    raise SubscriberClosed(f"the subscriber to {self.endpoint} is closed "
                                           "(or was never started)")
                if self._slot is not None:
                    break
                if self._failure is not None:
                    raise StylecastError(f"reading {self.endpoint} failed: {self._failure}")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no frame from {self.endpoint} within {timeout_s:g} s")
                self._cond.wait(remaining)
            message, self._slot = self._slot, None
            return message

    # -- the reader thread -----------------------------------------------------------------------

    def _connect(self) -> tuple[zmq.Socket, zmq.Socket]:
        """A connected SUB socket and its monitor (attached first, so no event is missed)."""
        assert self._context is not None
        sock = self._context.socket(zmq.SUB)
        monitor = None
        try:
            sock.setsockopt(zmq.RCVHWM, RCVHWM)
            sock.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                make_curve_client(sock, self.curve)
            sock.setsockopt(zmq.SUBSCRIBE, self.topic.encode())
            monitor = sock.get_monitor_socket(MONITORED_EVENTS)
            sock.connect(self.endpoint)
        except BaseException as err:
            _close(sock, monitor)
            if isinstance(err, zmq.ZMQError):
                raise ConfigError(f"cannot connect to {self.endpoint!r}: "
                                  f"{zmq.strerror(err.errno)}") from None
            raise
        return sock, monitor

    def _read(self, sock: zmq.Socket, monitor: zmq.Socket) -> None:
        connected_before = False  # every connection after the first one is a reconnect
        try:
            while True:
                try:
                    connected_before = self._read_until_stale(sock, monitor, connected_before)
                finally:
                    _close(sock, monitor)
                if self._stop.is_set():
                    return
                sock, monitor = self._connect()
        except BaseException as err:
            log.exception("the reader of %s failed", self.endpoint)
            with self._cond:
                self._failure = err
                self._cond.notify_all()

    def _read_until_stale(self, sock: zmq.Socket, monitor: zmq.Socket,
                          connected_before: bool) -> bool:
        """Receive until stopped, or until the socket is worth making anew: silent for
        stale_after_s after messages came (a half-open connection), or refused by the server's
        authenticator that long ago (libzmq does not retry after that; the key may have been
        authorized since). Returns whether any connection was ever made."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        last_message: float | None = None
        refused_at: float | None = None
        failing = False
        while not self._stop.is_set():
            ready = dict(poller.poll(POLL_MS))
            if monitor in ready:
                for event in _monitor_events(monitor):
                    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        with self._cond:
                            self._counts.reconnects += connected_before
                        connected_before, failing = True, False
                        continue
                    with self._cond:
                        self._counts.handshake_failures += 1
                    # zmq retries every 100 ms: say it once per run of failures
                    log.log(logging.DEBUG if failing else logging.WARNING,
                            "handshake with %s failed (%s)", self.endpoint,
                            _EVENT_NAMES.get(event, event))
                    failing = True
                    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                        refused_at = time.monotonic()
            now = time.monotonic()
            if sock in ready:
                self._drain(sock)
                last_message = now
            elif last_message is not None and now - last_message > self.stale_after_s:
                log.info("nothing from %s for %g s: reconnecting", self.endpoint,
                         self.stale_after_s)
                return connected_before
            elif refused_at is not None and now - refused_at > self.stale_after_s:
                log.info("asking %s again whether it accepts our key", self.endpoint)
                return connected_before
        return connected_before

    def _drain(self, sock: zmq.Socket) -> None:
        while True:
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._accept(parts, time.monotonic_ns())

    def _accept(self, parts: list[bytes], received_ns: int) -> None:
        message = _parse(parts, received_ns)
        with self._cond:
            if message is None:
                self._counts.invalid += 1
                return
            self._counts.received += 1
            self._counts.count_seq(message.topic, int(message.header["seq"]))
            if self._slot is not None:
                self._counts.skipped += 1
            self._slot = message
            self._cond.notify_all()


def _close(sock: zmq.Socket, monitor: zmq.Socket | None) -> None:
    if monitor is not None:
        sock.disable_monitor()
        monitor.close(linger=0)
    sock.close(linger=0)


def _monitor_events(monitor: zmq.Socket) -> Iterator[int]:
    from zmq.utils.monitor import recv_monitor_message

    while True:
        try:
            yield recv_monitor_message(monitor, zmq.NOBLOCK)["event"]
        except zmq.Again:
            return


def _decode(message: _Message) -> np.ndarray | None:
    """The RGB image of a frame message; for stats, None once the payload proved to be JSON."""
    if message.topic != STATS.decode():
        return decode_image(message.header, message.payload)
    try:
        document = json.loads(message.payload.decode("utf-8"))
    except RecursionError:
        document = None
    if not isinstance(document, dict):
        raise ValueError("the stats payload is not a JSON object")
    return None


def _parse(parts: list[bytes], received_ns: int) -> _Message | None:
    """The message, or None if it is not a v1 stylecast message."""
    try:
        message = parse(parts)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return None
    return _Message(message.topic, message.header, message.payload, received_ns)
