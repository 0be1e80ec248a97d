"""`file://PATH?loop=1&fps=N`: video files and animated GIFs, paced at their own rate.

Decoding is OpenCV's (`cv2.VideoCapture`, FFMPEG backend), which reads GIFs too; a GIF falls
back to Pillow where OpenCV is missing or cannot open it. Each frame is shown for its own
duration (from its presentation timestamp, or 1/CAP_PROP_FPS where the file gives none);
`fps=` overrides that, and 0 means as fast as the caller reads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stylecast.core.errors import ConfigError
from stylecast.daemon.sources.base import (
    Captured,
    FrameSource,
    Pacer,
    SourceEnded,
    rate_text,
)

log = logging.getLogger(__name__)

# Used where a file states no usable frame rate.
FALLBACK_FPS = 25.0
# A gap between two presentation timestamps longer than this is a seek or a glitch, not a
# frame duration.
MAX_FRAME_INTERVAL_S = 10.0


class FileOptions(BaseModel):
    """file://PATH?loop=1&fps=N (fps unset = the file's own rate, 0 = as fast as possible)."""

    model_config = ConfigDict(extra="forbid")

    loop: bool = False
    fps: float | None = Field(default=None, ge=0)


class Decoder(Protocol):
    """Frames of one pass through a file: (RGB frame, presentation time in s or None)."""

    fps: float  # the file's nominal rate, 0 if unknown
    width: int
    height: int

    def next_frame(self) -> tuple[np.ndarray, float | None] | None: ...

    def close(self) -> None: ...


class VideoFileSource(FrameSource):
    def __init__(self, uri: str, path: Path, options: FileOptions) -> None:
        super().__init__(uri)
        self.path = path
        self.options = options
        self._decoder: Decoder | None = None
        self._pacer = Pacer()
        self._last_pts: float | None = None
        self._frames_this_pass = 0

    @property
    def description(self) -> str:
        text = f"file {self.path}"
        if self._decoder is not None:
            text += f" {self._decoder.width}x{self._decoder.height} @ {rate_text(self._rate())}"
        return text + (", looping" if self.options.loop else "")

    @property
    def on_demand(self) -> bool:
        return self.options.fps == 0

    def open(self) -> None:
        self.close()
        if not self.path.is_file():
            raise ConfigError(f"source '{self.uri}': no such file: {self.path}")
        self._decoder = open_decoder(self.path, self.uri)
        self._pacer.reset()
        self._last_pts = None
        self._frames_this_pass = 0
        log.info("opened %s", self.description)

    def read(self, timeout_s: float) -> Captured:
        if self._decoder is None:
            raise RuntimeError("read() before open()")
        frame, pts = self._next_frame()
        self._pacer.wait(self._interval(pts))
        return Captured.now(frame)

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def _next_frame(self) -> tuple[np.ndarray, float | None]:
        assert self._decoder is not None
        decoded = self._decoder.next_frame()
        if decoded is None and self.options.loop and self._frames_this_pass > 0:
            self._decoder.close()
            self._decoder = open_decoder(self.path, self.uri)
            self._frames_this_pass = 0
            decoded = self._decoder.next_frame()
        if decoded is None:
            raise SourceEnded(f"{self.path}: no more frames")
        self._frames_this_pass += 1
        return decoded

    def _rate(self) -> float:
        if self.options.fps is not None:
            return self.options.fps
        return self._decoder.fps if self._decoder and self._decoder.fps > 0 else FALLBACK_FPS

    def _interval(self, pts: float | None) -> float:
        """How long after the previous frame this one is due."""
        previous, self._last_pts = self._last_pts, pts
        if self.options.fps is not None:
            return 1.0 / self.options.fps if self.options.fps > 0 else 0.0
        if pts is not None and previous is not None and 0 < pts - previous <= MAX_FRAME_INTERVAL_S:
            return pts - previous
        return 1.0 / self._rate()


def open_decoder(path: Path, uri: str) -> Decoder:
    """OpenCV for everything; Pillow for a GIF where OpenCV is missing or cannot read it."""
    is_gif = path.suffix.lower() == ".gif"
    try:
        import cv2  # noqa: F401 - only to know whether OpenCV is there
    except ImportError:
        if is_gif:
            return PillowGifDecoder(path, uri)
        raise ConfigError(f"source '{uri}': reading video files needs OpenCV "
                          "(pip install opencv-python-headless)") from None
    decoder = OpenCvDecoder(path)
    if decoder.is_open():
        return decoder
    decoder.close()
    if is_gif:
        return PillowGifDecoder(path, uri)
    raise ConfigError(f"source '{uri}': OpenCV cannot decode {path}")


class OpenCvDecoder:
    def __init__(self, path: Path) -> None:
        import cv2

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        fps = self._capture.get(cv2.CAP_PROP_FPS) if self._capture.isOpened() else 0.0
        self.fps = fps if 0 < fps < 1000 else 0.0  # NaN and nonsense read as unknown
        self.width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def is_open(self) -> bool:
        return self._capture.isOpened()

    def next_frame(self) -> tuple[np.ndarray, float | None] | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        pts_ms = self._capture.get(self._cv2.CAP_PROP_POS_MSEC)
        pts = pts_ms / 1000.0 if pts_ms >= 0 else None
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB), pts

    def close(self) -> None:
        self._capture.release()


class PillowGifDecoder:
    # Browsers and ffmpeg show GIF frames that claim (almost) no duration for 100 ms.
    MIN_DURATION_MS = 20
    DEFAULT_DURATION_MS = 100

    def __init__(self, path: Path, uri: str) -> None:
        try:
            from PIL import Image
        except ImportError:
            raise ConfigError(f"source '{uri}': reading GIFs needs OpenCV or Pillow "
                              "(pip install pillow)") from None
        try:
            self._image = Image.open(path)
            self._image.seek(0)
        except (OSError, ValueError) as err:
            raise ConfigError(f"source '{uri}': Pillow cannot read {path}: {err}") from None
        self.width, self.height = self._image.size
        self._index = 0
        self._pts_ms = 0.0
        durations = [self._duration_ms(i) for i in range(getattr(self._image, "n_frames", 1))]
        self.fps = 1000.0 * len(durations) / sum(durations)
        self._image.seek(0)

    def next_frame(self) -> tuple[np.ndarray, float | None] | None:
        try:
            self._image.seek(self._index)
        except EOFError:
            return None
        frame = np.array(self._image.convert("RGB"))
        pts = self._pts_ms / 1000.0
        self._pts_ms += self._duration_ms(self._index)
        self._index += 1
        return frame, pts

    def close(self) -> None:
        self._image.close()

    def _duration_ms(self, index: int) -> float:
        self._image.seek(index)
        duration = self._image.info.get("duration") or 0
        return duration if duration >= self.MIN_DURATION_MS else self.DEFAULT_DURATION_MS
