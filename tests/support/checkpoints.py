"""Checkpoints the export tests start from: small generators that behave like trained ones."""

from __future__ import annotations

import numpy as np
import torch

from stylecast.training.checkpoint import CheckpointInfo, save_checkpoint
from stylecast.training.presets import build_generator, preset_config


def photo_batch() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.coffee(), data.chelsea()]


def nano_generator(seed: int) -> torch.nn.Module:
    """A nano generator with BatchNorm scales and shifts far from identity and running
    statistics from real photos (with the defaults its blocks start as identities and its output
    is nearly flat, which would make every comparison look alike)."""
    torch.manual_seed(seed)
    generator = build_generator("nano")
    for module in generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running stats = the plain average over the batches below
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    generator.train()
    with torch.no_grad():
        for photo in photo_batch():
            generator(torch.tensor(photo[:128, :128]).permute(2, 0, 1)[None] / 127.5 - 1.0)
    return generator.eval()


def save_nano_checkpoint(path, seed: int = 0, style: str = "mosaic") -> torch.nn.Module:
    generator = nano_generator(seed)
    save_checkpoint(path, info=CheckpointInfo("fit", 7, "nano", preset_config("nano"), style),
                    generator=generator, train_state={}, options={})
    return generator
