"""Distillation pairs: crops of photos and of the teacher's renders of those photos, aligned.

Every augmentation that changes pixels happens before the teacher sees the photo, so each target
is exactly what the teacher makes of its input:

- scale: the photo is resized so its shorter side is one of `scales` (camera-like, 360-720 px
  for real runs) and rendered whole, so the teacher sees the full frame, as the student will.
- variant: 0 is the photo as it is; every further one is a horizontal flip (p = 0.5) and a
  camera-like photometric jitter (jitter.py), drawn from a seed made of the photo's name, the
  scale and the variant number: the same in every epoch and every run, so the render cache
  renders each once. Jitter applied after rendering would pair a changed input with the old
  target; a flip after rendering would teach mirrored brush strokes (no teacher is
  mirror-symmetric).
- crop: a random `size` x `size` window cut at the same place from photo and render. Cropping
  selects pixels without changing them, so it may follow the render.

Photos x scales x variants renders in all; `prerender` makes them up front.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from stylecast.training.data import ImageFolder, resize_shorter_side
from stylecast.training.imaging import image_to_tensor
from stylecast.training.jitter import Jitter


class Renderer(Protocol):
    """What pairs need of the render cache (teachers/cache.py: RenderCache)."""

    def render(self, photo: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 photo -> (photo resized to `short_side`, the teacher's render of it)."""
        ...


@dataclass(frozen=True)
class Variant:
    flip: bool = False
    jitter: Jitter | None = None

    def apply(self, photo: np.ndarray) -> np.ndarray:
        if self.flip:
            photo = np.ascontiguousarray(photo[:, ::-1])
        return self.jitter.apply(photo) if self.jitter else photo


def variant_for(name: str, scale: int, number: int, strength: float) -> Variant:
    """Variant `number` of photo `name` at `scale`: always the same; 0 is the photo unchanged."""
    if number == 0:
        return Variant()
    rng = np.random.default_rng([zlib.crc32(name.encode()), scale, number])
    return Variant(flip=bool(rng.integers(2)), jitter=Jitter.random(rng, strength))


class RenderedPairs(Dataset[dict[str, torch.Tensor]]):
    """{"content": photo crop, "target": the teacher's render there}, (3, size, size) in [-1, 1]."""

    def __init__(self, photos: ImageFolder, renderer: Renderer, size: int,
                 scales: Sequence[int], variants: int = 1, jitter: float = 0.0,
                 memory_bytes: int = 0) -> None:
        if not scales or min(scales) < size:
            raise ValueError(f"every scale must be >= the crop size {size}, got {list(scales)}")
        if variants < 1:
            raise ValueError(f"variants must be >= 1 (1 = the photos as they are), got {variants}")
        self.photos = photos
        self.renderer = renderer
        self.size = size
        self.scales = tuple(scales)
        self.variants = variants
        self.jitter = jitter
        # Whole pairs kept decoded, until `memory_bytes` are used: reading one from disk again
        # (decode, resize, jitter, hash, PNG) costs 40-60 ms, a tenth of a nano step, per crop.
        self.memory_bytes = memory_bytes
        self._kept: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._kept_bytes = 0

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        scale = self.scales[int(torch.randint(len(self.scales), ()))]
        photo, render = self.pair(index, scale, int(torch.randint(self.variants, ())))
        height, width = photo.shape[:2]
        top = int(torch.randint(height - self.size + 1, ()))
        left = int(torch.randint(width - self.size + 1, ()))
        window = np.s_[top : top + self.size, left : left + self.size]
        return {"content": image_to_tensor(photo[window].copy())[0],
                "target": image_to_tensor(render[window].copy())[0]}

    def pair(self, index: int, scale: int, number: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole (photo, render) of photo `index` at `scale`, variant `number`."""
        key = (index, scale, number)
        if key in self._kept:
            return self._kept[key]
        photo, render = self._load(index, scale, number)
        if self._kept_bytes + photo.nbytes + render.nbytes <= self.memory_bytes:
            self._kept[key] = photo, render
            self._kept_bytes += photo.nbytes + render.nbytes
        return photo, render

    def _load(self, index: int, scale: int, number: int) -> tuple[np.ndarray, np.ndarray]:
        path, image = self.photos.decoded(index, min_side=scale)
        photo = np.array(resize_shorter_side(image, scale))
        variant = variant_for(self._name(path), scale, number, self.jitter)
        photo, render = self.renderer.render(variant.apply(photo), scale)
        if photo.shape != render.shape or min(photo.shape[:2]) < self.size:
            raise ValueError(f"renderer returned photo {photo.shape} and render {render.shape} "
                             f"for a {self.size}px crop at scale {scale}")
        return photo, render

    def count(self) -> int:
        """How many renders the pairs need: photos x scales x variants."""
        return len(self.photos) * len(self.scales) * self.variants

    def prerender(self, progress: bool = False, share: tuple[int, int] = (0, 1)) -> int:
        """Render (or find in the cache) every pair, so training steps never wait for the
        teacher; `share` = (rank, world size) does every world-size-th only. Returns how many
        this call went through."""
        rank, world_size = share
        jobs = [(i, s, v) for i in range(len(self)) for s in self.scales
                for v in range(self.variants)][rank::world_size]
        for job in tqdm(jobs, desc="teacher renders", unit="render", disable=not progress,
                        dynamic_ncols=True):
            self.pair(*job)
        return len(jobs)

    def _name(self, path: Path) -> str:
        return path.relative_to(self.photos.folder).as_posix()
