"""Does an artifact compute what it should? Compare two image-to-image runners on real photos.

A runner is anything that maps an (H, W, 3) uint8 RGB image to one: a checkpoint's PyTorch
generator, an ONNX artifact in ONNX Runtime, a quantized variant. Export refuses to write an
artifact whose outputs stray from PyTorch's; quantize reports the quality it costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from stylecast.core.errors import InputError

Runner = Callable[[np.ndarray], np.ndarray]
MULTIPLE = 4
MAX_SIDE = 512  # verification images are cut down to this, to keep export quick


@dataclass(frozen=True)
class Comparison:
    images: int
    psnr_mean: float  # dB, over images; inf where outputs are identical
    psnr_min: float
    ssim_mean: float
    max_abs_error: int  # 0-255

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: (v if np.isfinite(v) else None) for k, v in asdict(self).items()}

    def summary(self) -> str:
        images = f"{self.images} image{'' if self.images == 1 else 's'}"
        return (f"{images}: PSNR mean {_db(self.psnr_mean)}, min {_db(self.psnr_min)},"
                f" SSIM {self.ssim_mean:.4f}, max abs error {self.max_abs_error}")


def _db(value: float) -> str:
    return "identical" if not np.isfinite(value) else f"{value:.2f} dB"


def compare(reference: Runner, candidate: Runner, images: Sequence[np.ndarray]) -> Comparison:
    from stylecast.training.metrics import psnr, ssim

    psnrs, ssims, worst = [], [], 0
    for image in images:
        expected, actual = reference(image), candidate(image)
        if expected.shape != actual.shape:
            raise ValueError(f"output shapes differ: {expected.shape} vs {actual.shape}")
        psnrs.append(psnr(expected, actual))
        ssims.append(ssim(expected, actual))
        worst = max(worst, int(np.abs(expected.astype(np.int16) - actual).max()))
    return Comparison(len(images), float(np.mean(psnrs)), float(np.min(psnrs)),
                      float(np.mean(ssims)), worst)


def load_images(folder: Path | None, size: tuple[int, int] | None, limit: int = 8,
                role: str = "verification") -> list[np.ndarray]:
    """Real photos to compare on: a folder's images, or scikit-image's sample photos.

    Each is center-cropped to `size`, or (dynamic models) to at most MAX_SIDE and a multiple of 4.
    """
    if folder is None:
        photos = _skimage_photos()
    else:
        from stylecast.training.data import list_images, load_rgb

        photos = []
        for path in list_images(folder, role)[:limit]:
            try:
                photos.append(load_rgb(path))
            except Exception as err:
                raise InputError(f"{role} image {path}: cannot be read ({err})") from None
    return [_fit(photo, size) for photo in photos[:limit]]


def _skimage_photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]


def _fit(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        height = min(image.shape[0], MAX_SIDE) // MULTIPLE * MULTIPLE
        width = min(image.shape[1], MAX_SIDE) // MULTIPLE * MULTIPLE
    else:
        height, width = size
        image = _resize(image, max(height / image.shape[0], width / image.shape[1]))
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    """Scale both sides by `scale` (round() keeps a side that must reach N at >= N)."""
    from PIL import Image

    if scale == 1:
        return image
    height = max(1, round(image.shape[0] * scale))
    width = max(1, round(image.shape[1] * scale))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def torch_runner(model: torch.nn.Module) -> Runner:
    """A runner over a uint8-in, uint8-out PyTorch module (export's Uint8ImageModel)."""

    def run(image: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor(image)).numpy()  # a copy: frames may be read-only

    return run
