"""Camera-like photometric jitter: exposure, white balance, contrast and saturation.

What differs between the cameras and the light a student will see, so that it does not learn
the teacher's look for one camera only. A jitter is a plain value drawn once from an RNG and then
applied exactly: distillation renders each jittered photo through the teacher (pairs.py), so the
same jitter must give the same pixels every time it is drawn for the render cache to hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Luma weights (ITU-R BT.601) for contrast and saturation.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# The widest change of each kind at strength 1, as a fraction of no change.
_EXPOSURE = 0.4
_WHITE_BALANCE = 0.15
_CONTRAST = 0.4
_SATURATION = 0.5


@dataclass(frozen=True)
class Jitter:
    exposure: float = 1.0  # gain on every channel
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)  # gain per channel
    contrast: float = 1.0  # around the mean luma
    saturation: float = 1.0  # around each pixel's luma

    @classmethod
    def random(cls, rng: np.random.Generator, strength: float) -> Jitter:
        """Each factor uniform in 1 +- strength * its range; strength 0 is no change."""
        if not 0 <= strength <= 1:
            raise ValueError(f"jitter strength must be in [0, 1], got {strength}")

        def factor(span: float, size: int | None = None):
            return 1 + strength * span * rng.uniform(-1, 1, size)

        balance = factor(_WHITE_BALANCE, 3)
        return cls(exposure=float(factor(_EXPOSURE)),
                   white_balance=tuple(float(g) for g in balance / balance.mean()),
                   contrast=float(factor(_CONTRAST)), saturation=float(factor(_SATURATION)))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> the jittered (H, W, 3) uint8 RGB, clipped and rounded."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        x = image.astype(np.float32) / 255
        x *= self.exposure * np.asarray(self.white_balance, dtype=np.float32)
        mean_luma = float((x @ _LUMA).mean())
        x = (x - mean_luma) * self.contrast + mean_luma
        luma = (x @ _LUMA)[..., None]
        x = (x - luma) * self.saturation + luma
        return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
