"""`test://`: a built-in moving test card, the source when no camera is configured.

A test card the size of a frame (colour gradients, colour bars, a checkerboard, rings and a
grid: edges in every direction and smooth areas) is drawn once at open() and tiled 2x2; each
frame is a frame-sized window on the tiles that travels along a smooth closed path, so every
frame shows the whole card, moved. One copy per frame, no per-pixel Python.

`motion=0` holds the card still; `noise=N` adds camera-like noise (up to N levels either way,
different in every frame), so a still card shows what a real still scene does to a model:
texture that shimmers from frame to frame.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stylecast.core.sizes import size_text
from stylecast.daemon.sources.base import Captured, FrameSource, Pacer, rate_text

# One trip round the path takes this many frames (10 s at 30 fps); the path is a Lissajous
# curve, so the motion changes direction smoothly.
FRAMES_PER_CYCLE = 300


class PatternOptions(BaseModel):
    """test://?width=640&height=480&fps=30&motion=1&noise=0 (fps 0 = as fast as the caller
    reads)."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=640, ge=16, le=8192)
    height: int = Field(default=480, ge=16, le=8192)
    fps: float = Field(default=30.0, ge=0)
    motion: bool = True
    noise: int = Field(default=0, ge=0, le=64)


class TestPatternSource(FrameSource):
    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, uri: str, options: PatternOptions) -> None:
        super().__init__(uri)
        self.options = options
        self._canvas: np.ndarray | None = None
        self._noise: CameraNoise | None = None
        self._pacer = Pacer()
        self._index = 0

    @property
    def description(self) -> str:
        o = self.options
        still = "" if o.motion else ", still"
        noise = f", noise {o.noise}" if o.noise else ""
        return f"test pattern {size_text(o.height, o.width)} @ {rate_text(o.fps)}{still}{noise}"

    @property
    def on_demand(self) -> bool:
        return self.options.fps == 0

    def open(self) -> None:
        card = draw_card(self.options.height, self.options.width)
        self._canvas = np.tile(card, (2, 2, 1))
        if self.options.noise:
            self._noise = CameraNoise(self.options.height, self.options.width, self.options.noise)
        self._pacer.reset()
        self._index = 0

    def read(self, timeout_s: float) -> Captured:
        if self._canvas is None:
            raise RuntimeError("read() before open()")
        fps = self.options.fps
        self._pacer.wait(1.0 / fps if fps > 0 else 0.0)
        top, left = (window_offset(self._index, self.options.height, self.options.width)
                     if self.options.motion else (0, 0))
        self._index += 1
        window = self._canvas[top:top + self.options.height, left:left + self.options.width]
        if self._noise is not None:
            return Captured.now(self._noise.added_to(window))
        return Captured.now(np.ascontiguousarray(window))

    def close(self) -> None:
        self._canvas = None
        self._noise = None


class CameraNoise:
    """Uniform noise of +-`amplitude` levels, a different window of one noise field per frame
    (a few passes over the frame, no per-pixel Python)."""

    def __init__(self, height: int, width: int, amplitude: int, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._field = self._rng.integers(-amplitude, amplitude + 1, (2 * height, 2 * width, 3),
                                         dtype=np.int16)
        self._sum = np.empty((height, width, 3), np.int16)

    def added_to(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        top, left = self._rng.integers(0, height), self._rng.integers(0, width)
        np.add(image, self._field[top:top + height, left:left + width], out=self._sum)
        np.clip(self._sum, 0, 255, out=self._sum)
        return self._sum.astype(np.uint8)


def window_offset(index: int, height: int, width: int) -> tuple[int, int]:
    """Top-left corner of frame `index`'s window on the (2*height, 2*width) tiled cards."""
    phase = 2 * math.pi * (index % FRAMES_PER_CYCLE) / FRAMES_PER_CYCLE
    # Sine against cosine: when one axis turns round, the other is at full speed, so the
    # window never stands still.
    top = (height / 2) * (1 - math.sin(2 * phase))
    left = (width / 2) * (1 - math.cos(phase))
    return round(top), round(left)


def draw_card(height: int, width: int) -> np.ndarray:
    """The test card, (height, width, 3) uint8 RGB."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    canvas = np.empty((height, width, 3), np.float32)
    canvas[..., 0] = x
    canvas[..., 1] = y
    canvas[..., 2] = 1.0 - 0.5 * (x + y)
    _draw_colour_bars(canvas)
    _draw_checkerboard(canvas, x, y)
    _draw_rings(canvas, x, y)
    _draw_grid(canvas)
    return np.ascontiguousarray(np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8))


# White, yellow, cyan, green, magenta, red, blue, black: the classic bars.
_BARS = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1],
                  [0, 0, 0]], np.float32) * 0.9


def _draw_colour_bars(canvas: np.ndarray) -> None:
    """Vertical colour bars across a band near the top."""
    height, width = canvas.shape[:2]
    left, right = width // 20, width - width // 20
    columns = (np.arange(right - left) * len(_BARS)) // (right - left)
    canvas[height // 10:height * 3 // 10, left:right] = _BARS[columns][None]


def _draw_checkerboard(canvas: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """A black-and-white checkerboard in the lower left."""
    height, width = canvas.shape[:2]
    size = max(min(height, width) // 16, 2)
    squares = (((x * width) // size).astype(int) + ((y * height) // size).astype(int)) % 2
    region = (y > 0.45) & (y < 0.9) & (x > 0.05) & (x < 0.42)
    canvas[region] = (0.1 + 0.8 * np.broadcast_to(squares, region.shape)[region])[:, None]


def _draw_rings(canvas: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """Concentric rings with a hue that turns around the centre, in the lower right."""
    height, width = canvas.shape[:2]
    dx, dy = (x - 0.7) * width, (y - 0.66) * height
    radius = np.sqrt(dx * dx + dy * dy)
    disc = radius < 0.3 * min(height, width)
    rings = (np.sin(radius / 6.0) > 0).astype(np.float32)
    angle = np.arctan2(dy, dx)
    for channel, shift in enumerate((0.0, 2.1, 4.2)):
        hue = 0.5 + 0.5 * np.cos(angle + shift)
        canvas[..., channel] = np.where(disc, hue * (0.35 + 0.65 * rings), canvas[..., channel])


def _draw_grid(canvas: np.ndarray) -> None:
    """Thin white lines every 64 pixels: sharp edges to see motion and resampling."""
    canvas[::64] = 1.0
    canvas[:, ::64] = 1.0
