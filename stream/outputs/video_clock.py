"""What the outputs that encode video (RTSP, WebRTC) share: the 90 kHz clock their timestamps
are on, timestamps from the frames' capture times, and the even sizes 4:2:0 needs."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np

VIDEO_CLOCK_HZ = 90_000  # the RTP clock of every video codec
TIME_BASE = Fraction(1, VIDEO_CLOCK_HZ)
RESTART_GAP_TICKS = VIDEO_CLOCK_HZ // 30  # after a clock that went back: one frame at 30 fps


class Timestamps:
    """One stream's pts: 90 kHz ticks from the capture time since its first frame, plus
    0..dither_ticks-1 random ticks (WebRTC's page needs them: webrtc_media.PTS_DITHER_TICKS),
    always increasing: a daemon restarted, or on another host, may go on from a smaller
    monotonic clock, and then the ticks go on from where they were."""

    def __init__(self, dither_ticks: int = 1) -> None:
        self._dither_ticks = dither_ticks
        self._origin_ns: int | None = None  # the capture time of pts 0
        self._last_capture_ns = 0
        self._last_pts = -1

    def of(self, capture_ns: int) -> int:
        if self._origin_ns is None or capture_ns < self._last_capture_ns:
            after = self._last_pts + RESTART_GAP_TICKS if self._last_pts >= 0 else 0
            self._origin_ns = capture_ns - after * 1_000_000_000 // VIDEO_CLOCK_HZ
        self._last_capture_ns = capture_ns
        ticks = (capture_ns - self._origin_ns) * VIDEO_CLOCK_HZ // 1_000_000_000
        pts = max(ticks + random.randrange(self._dither_ticks), self._last_pts + 1)
        self._last_pts = pts
        return pts


def even_size(image: np.ndarray) -> np.ndarray:
    """4:2:0 needs an even width and height: an odd last row or column is left out."""
    height, width = image.shape[:2]
    return image[:height - height % 2, :width - width % 2]
