"""A small HTTP server that shows a stylecast stream in any browser, as MJPEG.

    /              the page (page.html, a static file of this package): the live picture, live
                   figures and, given the daemon's control endpoint, its controls
    /stream.mjpg   multipart/x-mixed-replace, one image/jpeg part per new frame
    /raw.mjpg      the same for the daemon's `raw` topic (the page's split view)
    /snapshot.jpg  the newest frame
    /stats.json    the subscriber's figures, the newest header, what the page may offer
    /control...    JSON to and from the daemon's control socket (control_proxy.py)

Each browser waits for the next frame on a shared condition: it never gets the same frame twice
and nothing queues for it, so a slow browser simply skips frames and slows nobody else. JPEG
payloads from the daemon are passed through untouched; raw pixels are encoded once per frame,
only when some client wants them.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol

from stylecast.core.errors import ConfigError
from stylecast.stream.client import Frame
from stylecast.stream.outputs.control_proxy import (
    READ_COMMANDS,
    ControlProxy,
    Refused,
    body_length,
    check_caller,
    is_loopback,
    read_command,
)
from stylecast.stream.protocol import encode_image

log = logging.getLogger(__name__)

BOUNDARY = "stylecastframe"
JPEG_QUALITY = 85
WAIT_S = 1.0  # how often a waiting stream looks whether the server is closing
SEND_TIMEOUT_S = 10.0
STREAM_SNDBUF = 256 * 1024  # a browser that takes no data for this long is dropped
PAGE_FILE = "page.html"


def page_html() -> bytes:
    """The page: one static HTML file with its CSS and script inline, shipped in the package."""
    return resources.files(__package__).joinpath(PAGE_FILE).read_bytes()

class LatestJpeg:
    """The newest frame, numbered, and its JPEG bytes made at most once and only on demand."""

    def __init__(self, quality: int = JPEG_QUALITY) -> None:
        self.quality = quality
        self.number = 0
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._encode_lock = threading.Lock()
        self._encoded: tuple[int, bytes] | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            self._frame = frame
            self.number += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def latest(self) -> bytes | None:
        with self._cond:
            number, frame = self.number, self._frame
        return None if frame is None else self._jpeg(number, frame)

    def wait_newer(self, seen: int, timeout_s: float) -> tuple[int, int, bytes] | None:
        """(number, frame seq, JPEG) of a frame newer than `seen`; None on timeout or once
        closed."""
        with self._cond:
            self._cond.wait_for(lambda: self.number > seen or self._closed, timeout_s)
            if self._closed or self.number <= seen or self._frame is None:
                return None
            number, frame = self.number, self._frame
        return number, frame.seq, self._jpeg(number, frame)

    @property
    def closed(self) -> bool:
        return self._closed

    def _jpeg(self, number: int, frame: Frame) -> bytes:
        if frame.header.get("format") == "jpeg":
            return frame.payload
        with self._encode_lock:
            if self._encoded is None or self._encoded[0] != number:
                assert frame.image is not None
                self._encoded = (number, bytes(encode_image(frame.image, "jpeg", self.quality)))
            return self._encoded[1]


class Feed(Protocol):
    """A second picture for the split view (raw_feed.RawFeed)."""

    def watching(self) -> AbstractContextManager[LatestJpeg]: ...
    def state(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stream that never ends must not keep the process alive
    frames: LatestJpeg
    stats: Callable[[], dict[str, Any]]
    page: bytes
    clients: int
    clients_lock: threading.Lock
    control: ControlProxy | None
    raw: Feed | None
    loopback: bool


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = SEND_TIMEOUT_S
    server_version = "stylecast"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        routes = {"/": self._page, "/index.html": self._page, "/stream.mjpg": self._stream,
                  "/raw.mjpg": self._raw_stream, "/snapshot.jpg": self._snapshot,
                  "/stats.json": self._stats}
        if path in READ_COMMANDS:
            self._answer(lambda: self._control({"cmd": READ_COMMANDS[path]}))
            return
        route = routes.get(path)
        if route is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self._answer(route)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/control":
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self._answer(self._command)

    def _answer(self, route: Callable[[], None]) -> None:
        try:
            route()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            log.debug("http client %s went away", self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.client_address[0], *args)

    def _send(self, content_type: str, body: bytes, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        self._send("text/html; charset=utf-8", self.server.page)

    def _json(self, document: dict[str, Any], status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send("application/json", json.dumps(document).encode(), status)

    def _stats(self) -> None:
        raw = self.server.raw
        self._json({**self.server.stats(), "http_clients": self.server.clients,
                    "control": self.server.control is not None,
                    "raw": raw.state() if raw is not None else None})

    def _command(self) -> None:
        try:
            length = body_length(self.headers)
            command = read_command(self.headers, self.rfile.read(length))
        except Refused as refused:
            self._json({"ok": False, "error": str(refused)}, refused.status)
            return
        self._control(command)

    def _control(self, command: dict[str, Any]) -> None:
        """The daemon's reply to `command`, or why it was not asked."""
        if self.server.control is None:
            self._json({"ok": False, "error": "view only: stylecast-sub was started without "
                        "--control"}, HTTPStatus.NOT_FOUND)
            return
        try:
            check_caller(self.headers, loopback_server=self.server.loopback)
        except Refused as refused:
            self._json({"ok": False, "error": str(refused)}, refused.status)
            return
        status, reply = self.server.control.ask(command)
        self._json(reply, status)

    def _snapshot(self) -> None:
        jpeg = self.server.frames.latest()
        if jpeg is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            return
        self._send("image/jpeg", jpeg)

    def _raw_stream(self) -> None:
        if self.server.raw is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no raw feed")
            return
        with self.server.raw.watching() as frames:
            self._stream(frames)

    def _stream(self, frames: LatestJpeg | None = None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        # Bounded kernel buffering: a slow browser falls behind by a few frames at most, then
        # its writes block and it skips frames instead.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        frames, seen = self.server.frames if frames is None else frames, 0
        with self.server.clients_lock:
            self.server.clients += 1
        try:
            while not frames.closed:
                newer = frames.wait_newer(seen, WAIT_S)
                if newer is None:
                    continue
                seen, seq, jpeg = newer
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(jpeg)}\r\nX-Stylecast-Seq: {seq}\r\n"
                                 "\r\n".encode())
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
        finally:
            with self.server.clients_lock:
                self.server.clients -= 1


class MjpegServer:
    """Serves `frames` over HTTP on a thread of its own until close()."""

    def __init__(self, host: str, port: int, frames: LatestJpeg,
                 stats: Callable[[], dict[str, Any]], *, control: ControlProxy | None = None,
                 raw: Feed | None = None) -> None:
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), _Handler)
        except OSError as err:
            raise ConfigError(f"cannot serve HTTP on {host}:{port} "
                              f"({err.strerror or err})") from None
        self.httpd.frames = frames
        self.httpd.stats = stats
        self.httpd.page = page_html()
        self.httpd.clients = 0
        self.httpd.clients_lock = threading.Lock()
        self.httpd.control = control
        self.httpd.raw = raw
        self.httpd.loopback = is_loopback(host)
        self.frames = frames
        bound_host, bound_port = self.httpd.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}/"
        if not self.httpd.loopback:
            can = "sees the stream" + (" and controls the daemon" if control else "")
            log.warning("serving %s to other hosts: HTTP has no encryption or authentication "
                        "(anyone who reaches it %s)", self.url, can)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={
            "poll_interval": 0.2}, name="stylecast-http", daemon=True)

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; the control proxy and the raw feed it was given close with it."""
        self.frames.close()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
        for part in (self.httpd.raw, self.httpd.control):
            if part is not None:
                part.close()


LOOPBACK = "127.0.0.1"


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' ('[::1]:8080' for IPv6; port 0 picks a free one) -> (host, port); a bare
    'PORT' is on loopback."""
    if text.isdigit() and int(text) <= 65535:
        return LOOPBACK, int(text)
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host, int(port_text)
