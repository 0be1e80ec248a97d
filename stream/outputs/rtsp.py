"""--rtsp rtsp://HOST:PORT/PATH: push the stream into an RTSP server the user runs (MediaMTX,
go2rtc), as RTSP ANNOUNCE/RECORD over TCP through PyAV, for any RTSP player to watch.

Encoding and sending run on a thread of their own behind a newest-frame slot: a slow encoder or
network skips frames (counted, reported at the end) and never holds up the subscription. H.264
by libx264 (ultrafast, zerolatency, a keyframe every second of capture time, yuv420p).
Timestamps are the frames' capture times on the RTP clock (1/90000 s). A lost server is
retried with backoff (one line when it goes, one when it is back); a new frame size opens a new
connection at that size.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from stylecast.core.errors import ConfigError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.outputs.base import OutputContext, OutputPlugin, say
from stylecast.stream.outputs.newest_slot import NewestSlot
from stylecast.stream.outputs.video_clock import TIME_BASE, Timestamps, even_size

log = logging.getLogger(__name__)

# MJPEG is left out: RTP/JPEG from PyAV 18's FFmpeg was refused by Debian 12's ffmpeg as a
# receiver ("Invalid RTP/JPEG packet. Invalid qtable length 64").
ENCODER = "libx264"
PIX_FMT = "yuv420p"
ENCODER_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency"}
NOMINAL_FPS = 30  # the encoder's rate control reference; the timestamps are the real times
KEYFRAME_EVERY_NS = 1_000_000_000
SOCKET_TIMEOUT_US = "5000000"  # a server that takes nothing for 5 s counts as gone
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
TAKE_WAIT_S = 0.25
JOIN_S = 10.0


def check_url(url: str) -> str:
    """`url` when it is rtsp[s]://HOST[:PORT]/PATH, else a ConfigError naming what is wrong."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 -- raises ValueError on a port out of range
    except ValueError:
        raise ConfigError(f"--rtsp {url}: the port is not a number from 1 to 65535") from None
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise ConfigError(f"--rtsp {url}: expected rtsp://HOST:PORT/PATH, e.g. "
                          "rtsp://127.0.0.1:8554/stylecast")
    if parts.path.strip("/") == "":
        raise ConfigError(f"--rtsp {url}: the URL needs a path (the server's stream name), e.g. "
                          f"rtsp://{parts.netloc}/stylecast")
    return url


def load_av() -> Any:
    try:
        import av
    except ImportError:
        raise ConfigError(needs("--rtsp", "av")) from None
    return av


class Connection:
    """One RTSP session at one frame size: a container and its video stream."""

    def __init__(self, av: Any, url: str, width: int, height: int) -> None:
        self.av, self.size = av, (width, height)
        self.container = av.open(url, "w", format="rtsp", options={
            "rtsp_transport": "tcp", "timeout": SOCKET_TIMEOUT_US})
        try:
            self.stream = self.container.add_stream(ENCODER, rate=NOMINAL_FPS)
            self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, PIX_FMT
            self.stream.time_base = self.stream.codec_context.time_base = TIME_BASE
            self.stream.options = dict(ENCODER_OPTIONS)
        except BaseException:
            self.container.close()
            raise
        self._timestamps = Timestamps()
        self._last_key_ns: int | None = None

    def send(self, image: np.ndarray, t_capture_ns: int) -> None:
        frame = self.av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = self._timestamps.of(t_capture_ns), TIME_BASE
        if self._last_key_ns is None or t_capture_ns - self._last_key_ns >= KEYFRAME_EVERY_NS:
            frame.pict_type = self.av.video.frame.PictureType.I
            self._last_key_ns = t_capture_ns
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and end the session; a server already gone is no error here."""
        with contextlib.suppress(self.av.error.FFmpegError, OSError):
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        with contextlib.suppress(self.av.error.FFmpegError, OSError):
            self.container.close()


class RtspPusher:
    """The --rtsp output: frames into a newest-frame slot, pushed from a thread of its own."""

    def __init__(self, url: str, *, connect: Callable[..., Connection] | None = None) -> None:
        self.url = check_url(url)
        self.av = load_av()
        _check_encoder(self.av)
        self._connect = connect or Connection
        self.slot: NewestSlot[Frame] = NewestSlot()
        self.pushed = 0
        self.failed = 0  # frames taken while the server was away
        self._connection: Connection | None = None
        self._down = False  # the server is away
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stylecast-rtsp", daemon=True)

    def start(self, subscriber: Subscriber) -> None:
        self._thread.start()
        say(f"pushing to {self.url} (H.264, RTSP over TCP)")

    def write(self, frame: Frame) -> bool:
        self.slot.put(frame)
        return True

    def poll(self) -> bool:
        return True

    def close(self, completed: bool) -> str | None:
        self._stop.set()
        self.slot.close()
        if not self._thread.ident:
            return None
        self._thread.join(JOIN_S)
        if not self._thread.is_alive():  # else it is stuck in a send: leave it its connection
            self._drop_connection()
        return (f"pushed {self.pushed} frames to {self.url} ({self.slot.skipped} skipped while "
                f"encoding or sending was busy, {self.failed} lost while the server was away)")

    def _run(self) -> None:
        backoff = RETRY_FIRST_S
        while not self._stop.is_set():
            frame = self.slot.take(TAKE_WAIT_S)
            if frame is None:
                continue
            try:
                self._push(frame)
            except (self.av.error.FFmpegError, OSError) as err:
                self._lost(err, backoff)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, RETRY_MAX_S)
                continue
            backoff = RETRY_FIRST_S

    def _push(self, frame: Frame) -> None:
        image = even_size(frame.image)
        size = (image.shape[1], image.shape[0])
        if self._connection is not None and self._connection.size != size:
            log.info("rtsp: the stream is now %s: a new session", size_text(size[1], size[0]))
            self._drop_connection()
        if self._connection is None:
            self._connection = self._connect(self.av, self.url, *size)
        self._connection.send(image, int(frame.header["t_capture_ns"]))
        self.pushed += 1
        if self._down:
            log.warning("rtsp: pushing to %s again", self.url)
            self._down = False

    def _lost(self, err: BaseException, backoff: float) -> None:
        self.failed += 1
        self._drop_connection()
        if not self._down:
            self._down = True
            log.warning("rtsp: cannot push to %s (%s); retrying every %g to %g s", self.url,
                        getattr(err, "strerror", None) or err, backoff, RETRY_MAX_S)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _check_encoder(av: Any) -> None:
    try:
        av.codec.Codec(ENCODER, "w")
    except av.codec.codec.UnknownCodecError:
        raise ConfigError(f"--rtsp: this PyAV's FFmpeg has no {ENCODER} encoder (PyAV's own "
                          "wheels have it: pip install 'stylecast[rtsp]')") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rtsp", metavar="URL",
                        help="push the stream to an RTSP server (MediaMTX, go2rtc), e.g. "
                        "rtsp://127.0.0.1:8554/stylecast (H.264)")


def open_output(args: argparse.Namespace, context: OutputContext) -> RtspPusher | None:
    if args.rtsp is None:
        return None
    return RtspPusher(args.rtsp)


PLUGIN = OutputPlugin("rtsp", add_arguments, open_output)
