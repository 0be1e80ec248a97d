"""`file://PATH?loop=1&fps=N`: video files and animated GIFs, paced at their own rate.

Decoding is OpenCV's (`cv2.VideoCapture`, FFMPEG backend), which reads GIFs too; a GIF falls
back to Pillow where OpenCV is missing or cannot open it. Each frame is shown for its own
duration (from its presentation timestamp, or 1/CAP_PROP_FPS where the file gives none);
`fps=` overrides that, and 0 means as fast as the caller reads.

Looping: `loop=1` repeats the file forever and `loop=0` plays it once. Without `loop` a video
plays once and an animated GIF does what its own loop flag says, as a browser would: its
NETSCAPE2.0 loop count 0 repeats it forever, N plays it N more times, and a GIF without one plays
once. When a file source ends it logs one line saying so and how to repeat it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stylecast.core.errors import ConfigError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
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
    """file://PATH?loop=1&fps=N (fps unset = the file's own rate, 0 = as fast as possible; loop
    unset = the file's own: an animated GIF's loop flag, once for a video)."""

    model_config = ConfigDict(extra="forbid")

    loop: bool | None = None
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
        self._frames = 0  # over every pass since open()
        self._passes_left: int | None = None  # more passes after this one; None = forever
        self._own_loop: int | None = None  # the GIF's own loop count, where it decides

    @property
    def description(self) -> str:
        text = f"file {self.path}"
        if self._decoder is not None:
            size = size_text(self._decoder.height, self._decoder.width)
            text += f" {size} @ {rate_text(self._rate())}"
        if self.options.loop:
            return text + ", looping"
        if self._own_loop == 0:
            return text + ", looping (the GIF's own loop flag)"
        if self._own_loop:
            return text + f", plays {self._own_loop + 1} times (the GIF's own loop count)"
        return text

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
        self._frames = 0
        self._own_loop = None
        if self.options.loop is None and self.path.suffix.lower() == ".gif":
            self._own_loop = gif_loop_count(self.path)
        if self.options.loop or self._own_loop == 0:
            self._passes_left = None
        else:
            self._passes_left = self._own_loop or 0
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
        if decoded is None and self._passes_left != 0 and self._frames_this_pass > 0:
            if self._passes_left is not None:
                self._passes_left -= 1
            self._decoder.close()
            self._decoder = open_decoder(self.path, self.uri)
            self._frames_this_pass = 0
            decoded = self._decoder.next_frame()
        if decoded is None:
            log.info("%s", self._ended())
            raise SourceEnded(f"{self.path}: no more frames")
        self._frames_this_pass += 1
        self._frames += 1
        return decoded

    def _ended(self) -> str:
        """The line logged when the file ends: how many frames, and how to repeat it."""
        plays = f" ({self._own_loop + 1} plays, its own loop count)" if self._own_loop else ""
        if self.options.loop is not None:
            how = "set loop=1 in its URI to repeat it"
        else:
            how = f"add {'&' if '?' in self.uri else '?'}loop=1 to repeat it"
        return f"{self.uri} ended after {self._frames} frames{plays}; {how}"

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
        raise ConfigError(f"source '{uri}': " + needs("reading video files", "opencv")) from None
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
            raise ConfigError(f"source '{uri}': "
                              + needs("reading GIFs", "opencv", "pillow")) from None
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


def gif_loop_count(path: Path) -> int | None:
    """An animated GIF's own loop count, from its NETSCAPE2.0 (or ANIMEXTS1.0) application
    extension: 0 = forever, N = N more plays after the first; None where it has none (play once)
    or the file is not a GIF this can walk. Read here, not by a decoder: OpenCV does not say."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    pos = 13 + _color_table_bytes(data[10])  # header, screen descriptor, global color table
    while pos < len(data):
        block = data[pos]
        if block == 0x21 and pos + 1 < len(data):  # an extension: label, then sub-blocks
            label, pos = data[pos + 1], pos + 2
            if (label == 0xFF and data[pos:pos + 1] == b"\x0b"
                    and data[pos + 1:pos + 12] in (b"NETSCAPE2.0", b"ANIMEXTS1.0")):
                loop = data[pos + 12:pos + 16]  # sub-block: size 3, id 1, uint16 count
                if len(loop) == 4 and loop[0] >= 3 and loop[1] == 1:
                    return int.from_bytes(loop[2:4], "little")
            pos = _skip_sub_blocks(data, pos)
        elif block == 0x2C and pos + 10 <= len(data):  # an image: descriptor, table, LZW data
            pos += 10 + _color_table_bytes(data[pos + 9]) + 1
            pos = _skip_sub_blocks(data, pos)
        else:  # the trailer (0x3B), or something this does not know
            return None
    return None


def _color_table_bytes(flags: int) -> int:
    return 3 * (2 << (flags & 0x07)) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos
