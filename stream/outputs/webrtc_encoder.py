"""One H.264 encoder for all of a stream's WebRTC viewers: each frame is encoded once, on one
thread, and only while at least one viewer is connected.

aiortc's RTCRtpSender sends an av.Packet that a track hands it as it is (its H264Encoder.pack
only splits the Annex-B byte stream into RTP payloads), so every viewer's track can hand out the
same encoded frames. A P-frame decodes only after the frames before it, so a viewer takes them
in order and skips only to a keyframe: the encoder keeps the frames since its newest keyframe,
makes a keyframe every KEYFRAME_INTERVAL_S, and forces one when a viewer joins (at most one
forced keyframe per KEYFRAME_MIN_GAP_S). A browser's picture-loss request (PLI/FIR) reaches only
the sender's own aiortc encoder, which pre-encoded packets bypass: a viewer that loses a packet
recovers at the next keyframe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.frame import PictureType, VideoFrame

from stylecast.stream.client import Frame
from stylecast.stream.outputs.webrtc_media import SharedPicture

KEYFRAME_INTERVAL_S = 1.0
KEYFRAME_MIN_GAP_S = 0.5
BITRATE_PER_PIXEL = 2_000_000 / (640 * 480)  # bit/s: 2 Mbit/s at 640x480
# What Chromium decodes from aiortc's own H.264 encoder (profile-level-id 42e01f, packetization
# mode 1): constrained baseline, level 3.1.
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "level": "31"}
ENCODER_RATE = Fraction(30, 1)  # nominal only: frames come when they come


@dataclass(frozen=True)
class Encoded:
    index: int  # 1, 2, ... in encoding order
    frame: Frame  # what it was encoded from: seq and capture times
    data: bytes  # Annex-B byte stream
    keyframe: bool


class Cursor:
    """One viewer's place in the encoded stream: the index of the frame it sent last, and
    whether it has every frame since a keyframe (only then may a P-frame follow)."""

    def __init__(self, start: int) -> None:
        self.sent = start
        self.chained = False


def next_frame(since_key: list[Encoded], cursor: Cursor) -> Encoded | None:
    """The frame a viewer takes next from the frames since the newest keyframe (that one first):
    that keyframe if it is newer than what the viewer has (in order, or skipping ahead rather
    than queueing), else the next P-frame in order if the viewer has the chain, else nothing
    yet."""
    if not since_key or since_key[-1].index <= cursor.sent:
        return None
    key = since_key[0]
    if key.index > cursor.sent:
        return key
    if not cursor.chained:
        return None
    return since_key[cursor.sent - key.index + 1]


class SharedEncoder:
    """Encodes the shared picture's newest frames while viewers are joined; everything but the
    encoding itself runs on the picture's event loop."""

    def __init__(self, picture: SharedPicture,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._picture = picture
        self._clock = clock
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stylecast-h264")
        self._codec: av.VideoCodecContext | None = None
        self._since_key: list[Encoded] = []
        self._fresh = asyncio.Event()
        self._viewers = 0
        self._task: asyncio.Task | None = None
        self._want_key = False
        self._last_key_s = float("-inf")
        self.encoded = 0  # frames encoded
        self.handed_out = 0  # encoded frames handed to viewers, all of them together

    def join(self) -> Cursor:
        """A new viewer: it starts at the next keyframe, which is forced soon."""
        self._viewers += 1
        self._want_key = True
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        newest = self._since_key[-1].index if self._since_key else 0
        return Cursor(newest)

    def leave(self) -> None:
        self._viewers -= 1

    @property
    def viewers(self) -> int:
        return self._viewers

    async def next_for(self, cursor: Cursor) -> Encoded:
        while (chosen := next_frame(self._since_key, cursor)) is None:
            await self._fresh.wait()
        cursor.sent, cursor.chained = chosen.index, True
        self.handed_out += 1
        return chosen

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self._executor.shutdown)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        seen = 0
        try:
            while self._viewers > 0:
                number, frame, planes = await self._picture.newer_than(seen)
                if self._viewers == 0:
                    break
                seen = number
                key = self._key_due()
                data, is_key = await loop.run_in_executor(self._executor, self._encode,
                                                          planes, key)
                if data:
                    self._add(frame, data, is_key)
        finally:
            self._task = None

    def _key_due(self) -> bool:
        since = self._clock() - self._last_key_s
        return since >= KEYFRAME_INTERVAL_S or (self._want_key and since >= KEYFRAME_MIN_GAP_S)

    def _encode(self, planes: np.ndarray, key: bool) -> tuple[bytes, bool]:
        """Runs on the encoder's thread: (the frame's Annex-B bytes, whether a keyframe)."""
        video = VideoFrame.from_ndarray(planes, format="yuv420p")
        codec = self._codec_for(video.width, video.height)
        video.pict_type = PictureType.I if key else PictureType.NONE
        video.pts, video.time_base = self.encoded, codec.time_base
        packets = codec.encode(video)
        return b"".join(bytes(p) for p in packets), any(p.is_keyframe for p in packets)

    def _codec_for(self, width: int, height: int) -> av.VideoCodecContext:
        if self._codec is None or (self._codec.width, self._codec.height) != (width, height):
            self._codec = h264_codec(width, height)
        return self._codec

    def _add(self, frame: Frame, data: bytes, keyframe: bool) -> None:
        self.encoded += 1
        if keyframe:
            self._since_key = []
            self._last_key_s = self._clock()
            self._want_key = False
        self._since_key.append(Encoded(self.encoded, frame, data, keyframe))
        self._fresh.set()
        self._fresh = asyncio.Event()


def h264_codec(width: int, height: int) -> av.VideoCodecContext:
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = round(BITRATE_PER_PIXEL * width * height)
    codec.framerate, codec.time_base = ENCODER_RATE, 1 / ENCODER_RATE
    codec.gop_size = 10 * int(ENCODER_RATE)  # the keyframes come by time (_key_due) instead
    codec.options = dict(X264_OPTIONS)
    codec.profile = "Baseline"
    return codec
