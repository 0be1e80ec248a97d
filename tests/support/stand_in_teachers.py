"""Stand-in teachers behind the `teachers.base.Teacher` interface, and a render cache without a
disk, for tests of distillation that must not depend on a real teacher's file.

- `toy_style`: a fixed, learnable look (sepia toning with boosted contrast and a little edge
  darkening), as a pure function of the pixels and their neighbours.
- `FunctionTeacher(fn)`: any such function as a teacher (no torch features to tap).
- `ModuleTeacher(module)`: a torch generator as a teacher, with its features.
- `MemoryRenders(teacher)`: RenderCache's `render(photo, short_side)` in memory; counts renders.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from stylecast.training.imaging import image_to_tensor, tensor_to_image

SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def toy_style(x: Tensor) -> Tensor:
    """[-1, 1] photos -> a sepia, high-contrast look with darkened edges, in [-1, 1]."""
    unit = (x + 1) / 2
    sepia = torch.einsum("oc,nchw->nohw", SEPIA.to(x), unit).clamp(0, 1)
    blurred = F.avg_pool2d(F.pad(sepia, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    edges = (sepia - blurred).abs().mean(dim=1, keepdim=True)
    styled = ((sepia - 0.5) * 1.6 + 0.5 - 2 * edges).clamp(0, 1)
    return styled * 2 - 1


class FunctionTeacher:
    style: str | None = None

    def __init__(self, fn: Callable[[Tensor], Tensor], description: str = "stand-in") -> None:
        self.fn = fn
        self.description = description

    def cache_key(self) -> str:
        return f"stand-in-{self.description}"

    def render(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.fn(images)

    def feature_module(self) -> nn.Module | None:
        return None


class ModuleTeacher(FunctionTeacher):
    def __init__(self, module: nn.Module) -> None:
        super().__init__(module.eval().requires_grad_(False), type(module).__name__)
        self.module = module

    def feature_module(self) -> nn.Module | None:
        return self.module


class MemoryRenders:
    """What pairs need of RenderCache, kept in memory: renders each distinct photo once."""

    def __init__(self, teacher: FunctionTeacher) -> None:
        self.teacher = teacher
        self.renders: dict[tuple[bytes, tuple[int, ...], int], np.ndarray] = {}
        self.calls = 0

    def render(self, photo: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        image = Image.fromarray(photo)
        scale = short_side / min(image.size)
        if scale != 1:
            size = (round(image.width * scale), round(image.height * scale))
            photo = np.asarray(image.resize(size, Image.Resampling.BICUBIC))
        key = (photo.tobytes(), photo.shape, short_side)
        if key not in self.renders:
            self.renders[key] = tensor_to_image(self.teacher.render(image_to_tensor(photo)))
        return photo, self.renders[key]
