"""Strength and smoothing on stylized frames: per-pixel mixing of uint8 RGB frames after the
engine, written into the engine's output in place.

    average = smoothing x average + (1 - smoothing) x stylized    (running average, float32)
    shown   = strength x average + (1 - strength) x camera frame

The running average starts afresh with the first frame of another style or another size, and
after `reset()` (a pause). At strength 1 and smoothing 0, the defaults, nothing runs at all.

OpenCV does the arithmetic when it is installed (cv2.addWeighted, cv2.accumulateWeighted: SIMD,
a fraction of a millisecond at 640x480); numpy otherwise, in 8-bit fixed point for the blend,
a few times slower. `python -m benchmarks --sections controls` measures both.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from stylecast.core.extras import needs
from stylecast.daemon.config import StyleTuning

log = logging.getLogger(__name__)

AverageOf = tuple[str, tuple[int, ...]]  # the style and the frame shape a running average is of


@functools.cache
def _opencv() -> Any:
    try:
        import cv2
    except ImportError:
        log.info("mixing frames with numpy, slower: %s", needs("cv2.addWeighted", "opencv"))
        return None
    return cv2


class FrameMixer:
    """Applies a style's strength and smoothing to its frames; keeps the running average and
    the scratch buffers from one frame to the next. Use it from one thread (the inference
    stage's)."""

    def __init__(self, *, opencv: bool | None = None) -> None:
        self._cv2 = _opencv() if opencv is None or opencv else None
        if opencv and self._cv2 is None:
            raise RuntimeError(needs("FrameMixer(opencv=True)", "opencv"))
        self._average: np.ndarray | None = None  # float32, the running average
        self._average_of: AverageOf | None = None
        self._scratch: dict[str, np.ndarray] = {}

    @property
    def backend(self) -> str:
        return "opencv" if self._cv2 is not None else "numpy"

    def reset(self) -> None:
        """Start the running average afresh with the next frame."""
        self._average_of = None

    def apply(self, stylized: np.ndarray, frame: np.ndarray, tuning: StyleTuning,
              style: str) -> np.ndarray:
        """The frame to publish: `stylized` (the engine's output for `frame`) smoothed and
        blended with `frame` as `tuning` says, in place where the engine's buffer allows."""
        if tuning.strength >= 1.0 and tuning.smoothing <= 0.0:
            self.reset()
            return stylized
        out = _own_buffer(stylized, frame)
        if tuning.smoothing > 0.0:
            self._smooth(out, tuning.smoothing, (style, out.shape))
        else:
            self.reset()
        if tuning.strength < 1.0:
            self._blend(out, np.ascontiguousarray(frame), tuning.strength)
        return out

    def _smooth(self, image: np.ndarray, smoothing: float, key: AverageOf) -> None:
        """Fold `image` into the running average, then write the average back into `image`."""
        if self._average_of != key:
            if self._average is None or self._average.shape != image.shape:
                self._average = np.empty(image.shape, np.float32)
            np.copyto(self._average, image)
            self._average_of = key
            return
        average, weight = self._average, 1.0 - smoothing
        if self._cv2 is not None:
            self._cv2.accumulateWeighted(image, average, weight)
            self._cv2.convertScaleAbs(average, dst=image)  # rounds to nearest, saturates
            return
        scaled = self._buffer("float", image.shape, np.float32)
        np.multiply(image, np.float32(weight), out=scaled)
        average *= np.float32(smoothing)
        average += scaled
        np.rint(average, out=scaled)
        np.copyto(image, scaled, casting="unsafe")

    def _blend(self, image: np.ndarray, frame: np.ndarray, strength: float) -> None:
        """image = strength x image + (1 - strength) x frame, rounded to nearest."""
        if self._cv2 is not None:
            self._cv2.addWeighted(image, strength, frame, 1.0 - strength, 0.0, dst=image)
            return
        weight = round(strength * 256)  # 8-bit fixed point: (a*w + b*(256-w) + 128) >> 8
        mixed = self._buffer("mixed", image.shape, np.uint16)
        other = self._buffer("other", image.shape, np.uint16)
        np.multiply(image, weight, out=mixed, dtype=np.uint16)
        np.multiply(frame, 256 - weight, out=other, dtype=np.uint16)
        mixed += other
        mixed += 128
        mixed >>= 8
        np.copyto(image, mixed, casting="unsafe")

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        buffer = self._scratch.get(name)
        if buffer is None or buffer.shape != shape:
            buffer = self._scratch[name] = np.empty(shape, dtype)
        return buffer


def _own_buffer(stylized: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """`stylized` if it may be written in place (the engine hands out a fresh array per frame),
    else a copy: a read-only or strided output, or one that shares the camera frame's memory
    (the frame also goes out on the `raw` topic, untouched)."""
    if (stylized.flags.writeable and stylized.flags.c_contiguous
            and not np.may_share_memory(stylized, frame)):
        return stylized
    return stylized.copy()
