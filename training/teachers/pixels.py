"""Pixel plumbing the teachers share: the [-1, 1] convention of `Teacher.render` to and from
[0, 1], and fitting any image size to what a network accepts (pad to a multiple, or resize)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], float32, detached."""
    return (images.detach().float().clamp(-1, 1) + 1) / 2


def from_unit(images: Tensor) -> Tensor:
    """[0, 1] (values outside are clipped) -> [-1, 1]."""
    return images.clamp(0, 1) * 2 - 1


def pad_to_multiple(images: Tensor, multiple: int) -> Tensor:
    """(N, C, H, W) padded at the bottom and right to multiples of `multiple`, by reflection
    (an edge of mirrored content gives a convolutional network no border to react to)."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)


def resize(images: Tensor, height: int, width: int) -> Tensor:
    """(N, C, H, W) resized with antialiasing when it shrinks; unchanged when already that size."""
    if tuple(images.shape[-2:]) == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=True)
