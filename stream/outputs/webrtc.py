"""stylecast-sub --webrtc HOST:PORT: the stream as live WebRTC video, in any browser.

The output serves one static page (webrtc.html) and answers the WebRTC offers that page makes
(webrtc_http.py); every browser gets a peer connection of its own (webrtc_peers.py), all fed
from one newest-frame slot (webrtc_media.py) and, for H.264, one encoder (webrtc_encoder.py).
The server and the connections live on an asyncio loop in a thread of their own, from start()
to close(); write() only drops the newest frame into the slot.
Needs aiortc: pip install 'stylecast[webrtc]'.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import socket
import threading
from importlib import resources
from typing import Any

from stylecast.core.errors import ConfigError, StylecastError
from stylecast.stream.client import Frame
from stylecast.stream.outputs.base import OutputContext, OutputPlugin, say
from stylecast.stream.outputs.browser_output import host_port
from stylecast.stream.outputs.control_proxy import is_loopback

PAGE_FILE = "webrtc.html"
INSTALL_HINT = "pip install 'stylecast[webrtc]'"  # aiortc, and PyAV with it
STOP_TIMEOUT_S = 10.0


def page_html() -> bytes:
    return resources.files(__package__).joinpath(PAGE_FILE).read_bytes()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webrtc", type=host_port, metavar="HOST:PORT",
                        help="serve the stream as WebRTC video (H.264 or VP8) with each frame's "
                        "age at the browser; a bare PORT is on 127.0.0.1 (port 0: any free "
                        f"port). Needs aiortc: {INSTALL_HINT}")


def open_output(args: argparse.Namespace, context: OutputContext) -> WebRtcOutput | None:
    if args.webrtc is None:
        return None
    return WebRtcOutput(*args.webrtc, endpoint=context.endpoint)


PLUGIN = OutputPlugin("webrtc", add_arguments, open_output)


class WebRtcOutput:
    """Serves the page on HOST:PORT (bound here, so a bad address fails before subscribing)
    and the frames it is given to every browser that opens it."""

    def __init__(self, host: str, port: int, *, endpoint: str) -> None:
        peers, media, encoder, http = _aiortc_modules()
        self.endpoint = endpoint
        self._sock = _listen(host, port)
        self.url = _url(self._sock)
        self._loop = asyncio.new_event_loop()
        self._picture = media.SharedPicture(self._loop)
        self._encoder = encoder.SharedEncoder(self._picture)
        self._viewers = peers.Viewers(self._picture, self._encoder, ice_addresses(host))
        self._server = http.PageServer(self._sock, page_html(), self._viewers.answer,
                                       loopback=is_loopback(host))
        self._thread = threading.Thread(target=self._run, name="stylecast-webrtc", daemon=True)
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def start(self, subscriber: Any = None) -> None:
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise StylecastError(f"cannot serve WebRTC at {self.url}: {self._failure}")
        say(f"serving WebRTC at {self.url}")

    def write(self, frame: Frame) -> bool:
        if frame.image is not None:
            self._picture.put(frame)
        return True

    def poll(self) -> bool:
        return True

    @property
    def stats(self) -> dict[str, int]:
        """Frames written, frames the shared H.264 encoder encoded, encoded frames handed to
        viewers (all of them together), and the viewers the encoder encodes for."""
        return {"frames_in": self._picture.count, "frames_encoded": self._encoder.encoded,
                "frames_handed_out": self._encoder.handed_out,
                "encoding_for": self._encoder.viewers}

    def close(self, completed: bool = True) -> str | None:
        """Close every peer connection, stop the server and its thread."""
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(STOP_TIMEOUT_S)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        self._sock.close()
        if not self._started.is_set():
            return None
        return f"webrtc: {self._viewers.served} viewer(s) served at {self.url}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            _finish(self._loop)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self._server.start()
        except OSError as err:
            self._failure = err
        finally:
            self._started.set()
        if self._failure is not None:
            return
        await self._stop.wait()
        await self._server.close()
        await self._viewers.close()
        await self._encoder.close()


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does at the end: cancel what is left (aiortc's own tasks), wait for it,
    and join the encoders' executor threads."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


def _aiortc_modules() -> tuple[Any, Any, Any, Any]:
    try:
        from stylecast.stream.outputs import (
            webrtc_encoder,
            webrtc_http,
            webrtc_media,
            webrtc_peers,
        )
    except ImportError as err:
        raise ConfigError(f"--webrtc needs {err.name or 'aiortc'}: {INSTALL_HINT}") from None
    return webrtc_peers, webrtc_media, webrtc_encoder, webrtc_http


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; ConfigError naming the address if it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ConfigError(f"cannot serve WebRTC on {host}:{port} ({err.strerror or err})") \
            from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot serve WebRTC on {host}:{port} ({err.strerror or err})") \
            from None
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def ice_addresses(host: str) -> list[str] | None:
    """Where media goes: the one address the page is served on, or, for a wildcard address or
    a host name, every interface (aiortc's choice)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ["127.0.0.1"] if host == "localhost" else None
    return None if address.is_unspecified else [str(address)]
