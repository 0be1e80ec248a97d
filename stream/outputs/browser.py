"""A small HTTP server that shows a stylecast stream in any browser, as MJPEG.

    /              an HTML page: the live picture and a stats line refreshed every second
    /stream.mjpg   multipart/x-mixed-replace, one image/jpeg part per new frame
    /snapshot.jpg  the newest frame
    /stats.json    the subscriber's figures

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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stylecast.core.errors import ConfigError
from stylecast.stream.client import Frame
from stylecast.stream.protocol import encode_image

log = logging.getLogger(__name__)

BOUNDARY = "stylecastframe"
JPEG_QUALITY = 85
WAIT_S = 1.0  # how often a waiting stream looks whether the server is closing
SEND_TIMEOUT_S = 10.0
STREAM_SNDBUF = 256 * 1024  # a browser that takes no data for this long is dropped

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stylecast</title>
<style>
body {{ margin: 0; background: #111; color: #ddd; font: 14px system-ui, sans-serif; }}
img {{ display: block; margin: 0 auto; max-width: 100vw; max-height: 92vh;
      image-rendering: pixelated; min-width: 320px; }}
#stats {{ text-align: center; padding: 6px; font-variant-numeric: tabular-nums; }}
</style></head>
<body>
<img id="stream" src="stream.mjpg" alt="stylecast stream from {endpoint}">
<div id="stats">connecting to {endpoint}...</div>
<script>
const line = document.getElementById("stats");
function show(s) {{
  const f = s.last || {{}};
  const age = s.age_ms && s.age_ms.p50 !== null ? s.age_ms.p50.toFixed(1) + " ms" : "-";
  line.textContent = `${{s.fps.toFixed(1)}} fps | age ${{age}} | gaps ${{s.gaps}} | ` +
    `${{f.width || "?"}}x${{f.height || "?"}} | style ${{f.style ?? "-"}} | ` +
    `${{s.http_clients}} viewer(s)`;
}}
function refresh() {{
  fetch("stats.json", {{cache: "no-store"}}).then(r => r.json()).then(show)
    .catch(() => {{ line.textContent = "no stats"; }});
}}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stream that never ends must not keep the process alive
    frames: LatestJpeg
    stats: Callable[[], dict[str, Any]]
    page: bytes
    clients: int
    clients_lock: threading.Lock


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = SEND_TIMEOUT_S
    server_version = "stylecast"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        routes = {"/": self._page, "/index.html": self._page, "/stream.mjpg": self._stream,
                  "/snapshot.jpg": self._snapshot, "/stats.json": self._stats}
        route = routes.get(path)
        if route is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            route()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            log.debug("http client %s went away", self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.client_address[0], *args)

    def _send(self, content_type: str, body: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        self._send("text/html; charset=utf-8", self.server.page)

    def _stats(self) -> None:
        document = {**self.server.stats(), "http_clients": self.server.clients}
        self._send("application/json", json.dumps(document).encode())

    def _snapshot(self) -> None:
        jpeg = self.server.frames.latest()
        if jpeg is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            return
        self._send("image/jpeg", jpeg)

    def _stream(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        # Bounded kernel buffering: a slow browser falls behind by a few frames at most, then
        # its writes block and it skips frames instead.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        frames, seen = self.server.frames, 0
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
                 stats: Callable[[], dict[str, Any]], *, endpoint: str = "") -> None:
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), _Handler)
        except OSError as err:
            raise ConfigError(f"cannot serve HTTP on {host}:{port} "
                              f"({err.strerror or err})") from None
        self.httpd.frames = frames
        self.httpd.stats = stats
        self.httpd.page = PAGE.format(endpoint=_html_escape(endpoint)).encode()
        self.httpd.clients = 0
        self.httpd.clients_lock = threading.Lock()
        self.frames = frames
        bound_host, bound_port = self.httpd.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}/"
        if not _is_loopback(host):
            log.warning("serving %s to other hosts: HTTP has no encryption or authentication "
                        "(anyone who reaches it sees the stream)", self.url)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={
            "poll_interval": 0.2}, name="stylecast-http", daemon=True)

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.frames.close()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' ('[::1]:8080' for IPv6; port 0 picks a free one) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
