"""What both training tasks build from their options: Adam, the PatchGAN, the VGG-16 loss."""

from __future__ import annotations

from pathlib import Path

import torch

from stylecast.training.discriminator import PatchDiscriminator
from stylecast.training.options import TrainOptions
from stylecast.training.runtime import Runtime
from stylecast.training.vgg import PerceptualLoss, load_vgg16


def build_discriminator(options: TrainOptions) -> PatchDiscriminator:
    d = options.discriminator
    return PatchDiscriminator(channels=d.channels, n_layers=d.layers,
                              spectral_norm=d.spectral_norm)


def adam(parameters, options: TrainOptions) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=options.optim.lr, betas=options.optim.betas)


def optional_perceptual(options: TrainOptions, runtime: Runtime) -> PerceptualLoss | None:
    if not options.needs_vgg():
        return None
    return PerceptualLoss(load_vgg16(Path(options.loss.vgg_weights))).to(runtime.device)
