"""Losses the training tasks share: adversarial; cycle and identity (unpaired, CycleGAN-style);
image-gradient L1 (paired distillation); Gram matrices (style); and the image history pool.

GANLoss takes raw discriminator logits (a PatchGAN map); both modes average over every patch:

    lsgan  G: mean((D(fake) - 1)^2)    D: 0.5 * (mean((D(real) - 1)^2) + mean(D(fake)^2))
    hinge  G: -mean(D(fake))           D: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("lsgan", "hinge")


class GANLoss:
    """The generator's and the discriminator's adversarial objectives for one loss mode."""

    def __init__(self, mode: Literal["lsgan", "hinge"]) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss mode {mode!r} (choose from {', '.join(GAN_MODES)})")
        self.mode = mode

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "lsgan":
            return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
        return -fake_logits.mean()

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        if self.mode == "lsgan":
            real = F.mse_loss(real_logits, torch.ones_like(real_logits))
            fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
            return 0.5 * (real + fake)
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


class ImagePool:
    """A history of generated images shown to the discriminator (Shrivastava et al. 2017).

    Until the pool holds `size` images every queried image is stored and returned as is. After
    that each image, with probability 0.5, is swapped for a random stored one (the stored one is
    returned, the new one takes its place), else returned as is. Draws come from torch's global
    RNG, so `torch.manual_seed` makes a run reproducible. size 0 turns the pool off: query
    returns its argument unchanged.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) new images -> (N, C, H, W) detached images for the discriminator."""
        if self.size == 0:
            return images
        returned = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif torch.rand(()).item() < 0.5:
                index = int(torch.randint(self.size, ()).item())
                returned.append(self.images[index].to(images.device, images.dtype))
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.stack(returned)

    def state_dict(self) -> dict:
        """{"size": int, "images": [cpu tensors]}: loadable by torch.load(weights_only=True)."""
        return {"size": self.size, "images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"image pool state has size {state['size']}, this pool {self.size}")
        if len(state["images"]) > self.size:
            raise ValueError(
                f"image pool state holds {len(state['images'])} images, more than its size "
                f"{self.size}"
            )
        self.images = [image.detach().clone() for image in state["images"]]


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between G_BA(G_AB(a)) and a."""
    return F.l1_loss(reconstructed, original)


def identity_loss(same: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between G_AB(b) and b: a generator fed its own target domain should leave it alone."""
    return F.l1_loss(same, original)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) channel co-activations, divided by C * H * W."""
    n, c, h, w = features.shape
    # float32 even under autocast: float16 sums of H*W products overflow.
    with torch.autocast(features.device.type, enabled=False):
        flat = features.reshape(n, c, h * w).float()
        return flat @ flat.transpose(1, 2) / (c * h * w)


def gradient_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical pixel differences of two images: edges and fine
    texture, which plain L1 lets blur, weigh as much as flat colour."""
    def differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]

    (out_x, out_y), (want_x, want_y) = differences(output), differences(target.detach())
    return 0.5 * (F.l1_loss(out_x, want_x) + F.l1_loss(out_y, want_y))


def tapped_features(modules: Sequence[nn.Module], x: torch.Tensor,
                    taps: Mapping[int, str]) -> dict[str, torch.Tensor]:
    """Run `modules` in order on `x`, only as far as the deepest tap, and return the output of
    each tapped module (index -> name) under its name: the perceptual networks' feature maps."""
    out: dict[str, torch.Tensor] = {}
    h = x
    for index, module in enumerate(modules[: max(taps) + 1]):
        h = module(h)
        if index in taps:
            out[taps[index]] = h
    return out
