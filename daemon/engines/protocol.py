"""What the daemon's pipeline calls: an engine turns one RGB frame into one stylized RGB frame."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from stylecast.core.artifact import Contract

Size = tuple[int, int]  # (height, width)


class Engine(Protocol):
    """A loaded model. Not thread-safe: one pipeline thread calls it."""

    contract: Contract
    # One line for logs and the status reply, e.g.
    # "onnxruntime CPUExecutionProvider, 2 threads, model.onnx (int8)".
    description: str

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> stylized (H, W, 3) uint8 RGB. ValueError for a bad frame."""
        ...

    def close(self) -> None:
        """Release the runtime's memory; the engine is unusable afterwards."""
        ...
