"""A fake daemon behind a real ControlServer running in its own thread, for control tests."""

from __future__ import annotations

import json
import queue
import threading

import zmq

from stylecast.daemon.control import ControlError, ControlServer

WAIT_S = 10.0  # generous: the test machine is small and shared


class FakeDaemon:
    """Implements Controlled: two styles, a pause flag, strength and smoothing per style, and a
    switch to make status() crash."""

    def __init__(self) -> None:
        self.style = "mosaic"
        self.paused = False
        self.crash: Exception | None = None
        self.tunings: dict[str, dict[str, float]] = {}  # style -> strength and smoothing

    def status(self) -> dict:
        if self.crash is not None:
            raise self.crash
        return {"style": self.style, "paused": self.paused, "fps": 29.5}

    def styles(self) -> dict:
        return {"styles": ["mosaic", "udnie"], "current": self.style}

    def set_style(self, name: str) -> dict:
        if name not in ("mosaic", "udnie"):
            raise ControlError(f"unknown style {name!r} (known: mosaic, udnie)")
        self.style = name
        return {"style": name}

    def pause(self) -> dict:
        self.paused = True
        return {"paused": True}

    def resume(self) -> dict:
        self.paused = False
        return {"paused": False}

    def set_strength(self, value: float, style: str | None) -> dict:
        return self._tune("strength", value, style)

    def set_smoothing(self, value: float, style: str | None) -> dict:
        return self._tune("smoothing", value, style)

    def _tune(self, knob: str, value: float, style: str | None) -> dict:
        name = style or self.style
        if name not in ("mosaic", "udnie"):
            raise ControlError(f"unknown style {name!r} (known: mosaic, udnie)")
        self.tunings.setdefault(name, {"strength": 1.0, "smoothing": 0.0})[knob] = value
        return {"style": name, **self.tunings[name]}


class ServerThread:
    """A ControlServer created, served and closed in its own thread (zmq sockets stay put)."""

    def __init__(self, context: zmq.Context, endpoint: str, handler, **options) -> None:
        self.handled = 0
        self._stop = threading.Event()
        started: queue.Queue = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, args=(context, endpoint, handler, options, started), daemon=True
        )
        self._thread.start()
        result = started.get(timeout=WAIT_S)
        if isinstance(result, BaseException):
            raise result
        self.endpoint: str = result

    def _run(self, context, endpoint, handler, options, started) -> None:
        try:
            server = ControlServer(context, endpoint, handler, **options)
        except BaseException as err:
            started.put(err)
            return
        started.put(server.endpoint)
        try:
            while not self._stop.is_set():
                self.handled += server.serve_once(50)
        finally:
            server.close()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive()


def ask(context: zmq.Context, endpoint: str, *frames: bytes, timeout_s: float = WAIT_S):
    """Send raw frames on a fresh REQ socket; the decoded reply, or None if none came."""
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(list(frames))
        if not sock.poll(int(timeout_s * 1000)):
            return None
        return json.loads(sock.recv())
    finally:
        sock.close(linger=0)
