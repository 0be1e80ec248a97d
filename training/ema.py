"""An exponential moving average (EMA) of a network's weights: what distillation deploys.

Small-batch, adversarial training leaves the weights jittering around a good solution from step
to step; their running average sits nearer its middle and looks steadier (Karras et al. keep one
for every StyleGAN). The raw network keeps training; the average only follows it:

    average <- decay * average + (1 - decay) * weights          after every optimiser step

With `warmup` the decay starts low and grows as min(decay, (1 + n) / (10 + n)) after n updates
(TensorFlow's num_updates rule), so early on the average is not dragged back towards the random
initial weights. Float buffers (BatchNorm running statistics) are averaged the same way; others
(batch counters) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage(nn.Module):
    """Holds `average`, a frozen eval-mode copy of a network that `update` moves towards it."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        super().__init__()
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.average = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> WeightAverage:
        return super().train(False)  # the average is only ever evaluated

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        n = int(self.updates) + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1 - self.current_decay()
        for mine, theirs in zip(self.average.parameters(), model.parameters(), strict=True):
            mine.lerp_(theirs.detach().to(mine.dtype), weight)
        for mine, theirs in zip(self.average.buffers(), model.buffers(), strict=True):
            if mine.is_floating_point():
                mine.lerp_(theirs.to(mine.dtype), weight)
            else:
                mine.copy_(theirs)
        self.updates += 1
