"""Model cost figures: parameter count and multiply-accumulates, computed by running the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stylecast.training.presets import PRESETS, build_generator

REFERENCE_SIZE = (256, 256)


@dataclass(frozen=True)
class Complexity:
    name: str
    params: int
    macs: int
    height: int
    width: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on a (1, 3, height, width) input.

    Counts convolutions and matrix products (PyTorch's FlopCounterMode reports 2 FLOPs per MAC),
    the convention of the GAN Compression and CycleGAN figures we compare against.
    """
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, height, width))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def measure(name: str, model: nn.Module, size: tuple[int, int] = REFERENCE_SIZE) -> Complexity:
    height, width = size
    return Complexity(name, count_params(model), count_macs(model, height, width), height, width)


def describe_presets(size: tuple[int, int] = REFERENCE_SIZE) -> list[Complexity]:
    return [measure(name, build_generator(name), size) for name in PRESETS]
