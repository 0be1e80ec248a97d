"""Camera frames of any size through a model that takes one size: resize in, resize back.

A static model runs at its contract's size only; a dynamic one at any multiple of the contract's
`size_multiple` (and, for a TensorRT engine, only inside its optimization profile). FittedEngine
resizes each frame to the nearest size the model takes and the stylized output back to the
frame's size. A frame that already fits is passed through untouched (no copy, no resize).

Resizing uses OpenCV when it is installed (cv2.resize: INTER_AREA when shrinking, INTER_LINEAR
when enlarging) and otherwise a numpy bilinear resize with half-pixel centres (what INTER_LINEAR
does): several times slower, and it aliases when shrinking by more than 2x. Install OpenCV
(pip install 'stylecast[video]') where frames are resized.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from stylecast.core.artifact import Contract
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.daemon.engines.protocol import Engine, Size

log = logging.getLogger(__name__)


def check_frame(frame: Any) -> None:
    """Raise ValueError unless `frame` is a non-empty (H, W, 3) uint8 array."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected an (H, W, 3) uint8 numpy frame, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.dtype} {frame.shape}")


def nearest_multiple(side: int, multiple: int) -> int:
    """The multiple of `multiple` nearest to `side` (halves round up), at least one multiple."""
    return max(multiple, (side + multiple // 2) // multiple * multiple)


def model_size(contract: Contract, frame_size: Size,
               size_range: tuple[Size, Size] | None = None) -> Size:
    """The (height, width) to run the model at for frames of `frame_size`.

    A static side is the contract's; a dynamic side is the frame's, rounded to the nearest
    multiple of size_multiple and clamped into `size_range` ((min, max) of a TensorRT profile).
    """
    fixed = (contract.height, contract.width)
    size = []
    for axis, (static, side) in enumerate(zip(fixed, frame_size, strict=True)):
        if static is not None:
            size.append(static)
            continue
        side = nearest_multiple(side, contract.size_multiple)
        if size_range is not None:
            low, high = size_range[0][axis], size_range[1][axis]
            side = min(max(side, low), high)
        size.append(side)
    return (size[0], size[1])


@functools.cache
def _opencv() -> Any:
    try:
        import cv2
    except ImportError:
        log.info("resizing frames with numpy, slower: %s", needs("cv2.resize", "opencv"))
        return None
    return cv2


def resize(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to `size` (height, width)."""
    height, width = size
    cv2 = _opencv()
    if cv2 is None:
        return resize_bilinear(image, size)
    shrinking = height <= image.shape[0] and width <= image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    # cv2 needs positive strides: a flipped (BGR->RGB) view is copied first.
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


def resize_bilinear(image: np.ndarray, size: Size) -> np.ndarray:
    """numpy bilinear resize with half-pixel centres (OpenCV's INTER_LINEAR), uint8 in and out."""
    rows_low, rows_high, row_weight = _taps(image.shape[0], size[0])
    cols_low, cols_high, col_weight = _taps(image.shape[1], size[1])
    pixels = image.astype(np.float32)
    top, bottom = pixels[rows_low], pixels[rows_high]
    rows = top + (bottom - top) * row_weight[:, None, None]
    left, right = rows[:, cols_low], rows[:, cols_high]
    blended = left + (right - left) * col_weight[None, :, None]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each target pixel: the two source pixels it lies between and the second's weight."""
    position = (np.arange(target, dtype=np.float64) + 0.5) * (source / target) - 0.5
    position = np.clip(position, 0, source - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, source - 1)
    return low, high, (position - low).astype(np.float32)


class FittedEngine:
    """An engine that takes frames of any size: resizes to what the model takes and back."""

    def __init__(self, engine: Engine, *, size_range: tuple[Size, Size] | None = None) -> None:
        self.engine = engine
        self.contract = engine.contract
        self.description = engine.description
        self._size_range = size_range
        self._sizes: dict[Size, Size] = {}

    def model_size_for(self, frame_size: Size) -> Size:
        size = self._sizes.get(frame_size)
        if size is None:
            size = self._sizes[frame_size] = model_size(self.contract, frame_size,
                                                        self._size_range)
            if size != frame_size:
                log.info("frames of %s are resized to %s for %s", size_text(*frame_size),
                         size_text(*size), self.description)
        return size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        check_frame(frame)
        frame_size = (frame.shape[0], frame.shape[1])
        size = self.model_size_for(frame_size)
        output = self.engine(frame if size == frame_size else resize(frame, size))
        if output.shape[:2] != frame_size:
            output = resize(output, frame_size)
        return output

    def close(self) -> None:
        self.engine.close()
