"""The 70x70 PatchGAN discriminator of pix2pix/CycleGAN: one real/fake logit per image patch.

    conv 4x4 s2 -> LeakyReLU(0.2)                       no normalization on the first layer
    (n_layers - 1) x conv 4x4 s2 -> norm -> LeakyReLU   channels double, capped at 8x
    conv 4x4 s1 -> norm -> LeakyReLU
    conv 4x4 s1 -> 1 channel of logits

With n_layers=3 every logit sees a 70x70 patch of the input. "norm" is spectral normalization of
the conv weights (the default: stable with LSGAN and hinge losses, no batch statistics) or
InstanceNorm2d. The discriminator only exists during training, so unlike the generator it may
use InstanceNorm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

KERNEL = 4
PADDING = 1
MAX_MULTIPLIER = 8


class PatchDiscriminator(nn.Module):
    """forward: (N, in_channels, H, W) in [-1, 1] -> (N, 1, h, w) logits, one per patch."""

    def __init__(
        self, in_channels: int = 3, channels: int = 64, n_layers: int = 3,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"discriminator n_layers must be >= 1, got {n_layers}")
        self.use_spectral_norm = spectral_norm
        widths = [channels * min(2**n, MAX_MULTIPLIER) for n in range(n_layers + 1)]
        layers: list[nn.Module] = [self._conv(in_channels, widths[0], 2, bias=True), _lrelu()]
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            layers += self._inner(widths[n - 1], widths[n], stride)
        layers.append(self._conv(widths[-1], 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def _conv(self, c_in: int, c_out: int, stride: int, bias: bool) -> nn.Module:
        conv = nn.Conv2d(c_in, c_out, KERNEL, stride, PADDING, bias=bias)
        return _spectral_norm(conv) if self.use_spectral_norm else conv

    def _inner(self, c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        if self.use_spectral_norm:
            return [self._conv(c_in, c_out, stride, bias=True), _lrelu()]
        # The affine InstanceNorm's shift makes a conv bias redundant.
        return [
            self._conv(c_in, c_out, stride, bias=False),
            nn.InstanceNorm2d(c_out, affine=True),
            _lrelu(),
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)
