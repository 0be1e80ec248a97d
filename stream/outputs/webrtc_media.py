"""The picture WebRTC viewers get: one newest-frame slot shared by all, one track per viewer.

The slot converts each frame to YUV 4:2:0 once, however many viewers there are. An H.264 viewer's
track (EncodedTrack) hands out the frames of the one encoder all H.264 viewers share
(webrtc_encoder.py); a VP8 viewer's track (ViewerTrack) hands the picture to its own peer
connection, whose sender encodes it (aiortc keeps one encoder per RTCRtpSender). Either way a
viewer waits for a frame newer than the last one it sent: a slow viewer (a slow encoder, a slow
network) skips frames and never builds a queue.

aiortc's MediaRelay does not fit here: buffered, it queues every frame for a slow viewer;
unbuffered, it hands every viewer the same av.VideoFrame object, whose pict_type the H.264
encoder sets (keyframe or not) from its executor thread, so viewers would step on each other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import VideoStreamTrack
from av import Packet, VideoFrame

from stylecast.stream.client import Frame
from stylecast.stream.outputs.video_clock import TIME_BASE, Timestamps, even_size

# A few ticks (at most 0.17 ms) of random offset on each pts: the page matches displayed frames
# to their capture times by RTP timestamp, and a source with perfectly even frame spacing would
# make that match ambiguous by whole frames (see webrtc.html).
PTS_DITHER_TICKS = 16


class SharedPicture:
    """The newest frame for every viewer. put() may come from any thread and never blocks;
    everything else runs on `loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._number = 0
        self._frame: Frame | None = None
        self._fresh = asyncio.Event()
        self._yuv: tuple[int, np.ndarray] | None = None

    def put(self, frame: Frame) -> None:
        with self._lock:
            self._frame = frame
            self._number += 1
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    @property
    def count(self) -> int:
        """Frames put so far."""
        return self._number

    def _wake(self) -> None:
        self._fresh.set()
        self._fresh = asyncio.Event()

    async def newer_than(self, seen: int) -> tuple[int, Frame, np.ndarray]:
        """(number, frame, its YUV 4:2:0 planes) of the newest frame after number `seen`."""
        while True:
            with self._lock:
                number, frame = self._number, self._frame
            if number > seen and frame is not None:
                return number, frame, self._planes(number, frame)
            await self._fresh.wait()

    def _planes(self, number: int, frame: Frame) -> np.ndarray:
        if self._yuv is None or self._yuv[0] != number:
            self._yuv = (number, yuv420(frame.image))
        return self._yuv[1]


def yuv420(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) RGB image as PyAV's yuv420p array; an odd last row or column is dropped
    (4:2:0 needs even sizes)."""
    rgb = np.ascontiguousarray(even_size(image))
    return VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


def sent_document(frame: Frame, pts: int) -> dict[str, Any]:
    """What the data channel says of a frame sent with this pts: rtp is what the browser sees
    less the random origin of the viewer's RTP sender."""
    return {"seq": frame.seq, "rtp": pts % 2**32,
            "t_capture_unix_ns": frame.header.get("t_capture_unix_ns")}


class ViewerTrack(VideoStreamTrack):
    """One viewer's video for a codec its sender encodes itself (VP8): the shared picture's
    newest frame each time its sender asks. `sent(document)` is told {seq, t_capture_unix_ns,
    rtp} of each frame it hands out."""

    def __init__(self, picture: SharedPicture, sent: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._picture = picture
        self._sent = sent
        self._seen = 0
        self._timestamps = Timestamps(PTS_DITHER_TICKS)

    async def recv(self) -> VideoFrame:
        number, frame, planes = await self._picture.newer_than(self._seen)
        self._seen = number
        video = VideoFrame.from_ndarray(planes, format="yuv420p")
        video.pts = self._timestamps.of(int(frame.header["t_capture_ns"]))
        video.time_base = TIME_BASE
        self._sent(sent_document(frame, video.pts))
        return video


class EncodedTrack(VideoStreamTrack):
    """One viewer's H.264 video, encoded once for all viewers (webrtc_encoder.py): the packets
    it hands out go to the RTP sender as they are. Joins the encoder on its first recv (the
    connection is up), leaves it on stop()."""

    def __init__(self, encoder: Any, sent: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._encoder = encoder
        self._sent = sent
        self._cursor: Any = None
        self._timestamps = Timestamps(PTS_DITHER_TICKS)

    async def recv(self) -> Packet:
        if self._cursor is None:
            self._cursor = self._encoder.join()
        encoded = await self._encoder.next_for(self._cursor)
        packet = Packet(encoded.data)  # its own: the pts is this viewer's
        packet.pts = self._timestamps.of(int(encoded.frame.header["t_capture_ns"]))
        packet.time_base = TIME_BASE
        self._sent(sent_document(encoded.frame, packet.pts))
        return packet

    def stop(self) -> None:
        if self._cursor is not None and self.readyState == "live":
            self._encoder.leave()
        super().stop()
