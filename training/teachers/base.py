"""What every teacher is: a frozen image-to-image model that stylizes a batch of photos.

One kind of teacher per module in this package, each behind this interface (as Frigate's
detector plugins are): the distillation task, the render cache and the quality benchmark use
nothing else of a teacher.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn


class Teacher(Protocol):
    # Names the teacher in logs, sample grids and the run's options.json.
    description: str
    # A style name to record in the student's artifact, or None to leave it to the user.
    style: str | None

    def cache_key(self) -> str:
        """Changes whenever the teacher's output could change (weights' sha256 + options): the
        render cache files its renders under it."""
        ...

    def render(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) float RGB in [-1, 1] -> (N, 3, H, W) in [-1, 1], without gradients.

        Any H and W: a teacher that needs other sizes pads or resizes inside and returns the
        input's size."""
        ...

    def feature_module(self) -> nn.Module | None:
        """A torch generator with `feature_layers()` for feature distillation, or None (ONNX
        teachers have no features to tap)."""
        ...
