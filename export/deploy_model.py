"""The network that gets exported: a trained generator with its pixel conversions folded in.

    image (H, W, 3) uint8 RGB -> float NCHW in [-1, 1] -> generator -> (H, W, 3) uint8 RGB

so the device feeds camera frames as they are and does no per-pixel Python math (on a Jetson the
conversions run on the GPU). `--float-io` exports the bare generator instead. BatchNorm is folded
into the preceding convolutions before export, so the graph holds only Conv/Relu/Add/Resize/Tanh
plus the conversions.
"""

from __future__ import annotations

import copy
import hashlib
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from stylecast.training.generator import CompactGenerator


class Uint8ImageModel(nn.Module):
    """uint8 HWC RGB in, uint8 HWC RGB out, around a [-1, 1] NCHW generator."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # TensorRT 8.5 takes uint8 only at the graph's edges: cast first, and cast back last.
        x = image.to(torch.float32).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0
        y = self.generator(x)
        # +0.5 then a truncating cast rounds to nearest for the clipped, non-negative values.
        pixels = torch.clamp((y + 1.0) * 127.5 + 0.5, 0.0, 255.0).squeeze(0).permute(1, 2, 0)
        return pixels.to(torch.uint8)


def fold_batchnorm(generator: CompactGenerator) -> CompactGenerator:
    """An eval-mode copy with every Conv2d -> BatchNorm2d pair fused into one Conv2d."""
    folded = copy.deepcopy(generator).eval()
    for parent in folded.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
    return folded


def weights_sha256(generator: nn.Module) -> str:
    """A content hash of the weights: every state-dict tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()
