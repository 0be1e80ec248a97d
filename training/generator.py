"""The compact generator family: an image-to-image network built for TensorRT and ONNX Runtime.

Two tails share one body. The `full` tail (nano, small, base, large):

    stem      3x3 conv                                   full resolution
    down x2   depthwise-separable conv, stride 2         1/2, then 1/4 resolution
    body      inverted-residual blocks (MobileNetV2)     1/4 resolution, where most work is
    up x2     nearest resize + depthwise-separable conv  back to full resolution
    head      3x3 conv to RGB, tanh

The `subpixel` tail (swift) does no convolution at full resolution, where a CPU is bound by
memory rather than arithmetic (docs/benchmarks.md, "Student design"):

    stem      3x3 conv, stride 2                         1/2 resolution
    down      depthwise-separable conv, stride 2         1/4 resolution
    body      inverted-residual blocks                   1/4 resolution
    up        nearest resize + depthwise-separable conv  1/2 resolution, plus the stem (a skip)
    head      1x1 conv to 12 channels, DepthToSpace(2)   full resolution, then tanh

Every op exports to ONNX as Conv, Relu, Add, Resize(nearest), DepthToSpace, Tanh (and
BatchNormalization, which export folds into the convolutions). There is no transposed
convolution (checkerboard artifacts, awkward INT8 per-channel axis) and no InstanceNorm (breaks
FP16 TensorRT, does not quantize). Input and output are NCHW float in [-1, 1]; H and W must be
multiples of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from stylecast.core.sizes import size_text

SIZE_MULTIPLE = 4  # two stride-2 stages
Tail = Literal["full", "subpixel"]
TAILS: tuple[Tail, ...] = ("full", "subpixel")


@dataclass(frozen=True)
class GeneratorConfig:
    """The shape of one member of the family. `channels` is the stem width; it doubles per down."""

    channels: int
    blocks: int
    expansion: int
    tail: Tail = "full"  # checkpoints from before the subpixel tail have none: they are "full"

    def __post_init__(self) -> None:
        for field in ("channels", "blocks", "expansion"):
            if getattr(self, field) < 1:
                raise ValueError(f"generator {field} must be >= 1, got {getattr(self, field)}")
        if self.tail not in TAILS:
            raise ValueError(f"generator tail must be one of {', '.join(TAILS)}, got {self.tail!r}")


class ConvBNReLU(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1,
        relu: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (optionally strided) then pointwise 1x1: ~1/9 the cost of a full 3x3."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNReLU(c_in, c_in, 3, stride, groups=c_in),
            ConvBNReLU(c_in, c_out, 1),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, identity skip."""

    def __init__(self, channels: int, expansion: int) -> None:
        super().__init__()
        hidden = channels * expansion
        self.body = nn.Sequential(
            ConvBNReLU(channels, hidden, 1),
            ConvBNReLU(hidden, hidden, 3, groups=hidden),
            ConvBNReLU(hidden, channels, 1, relu=False),
        )
        # Start every block as the identity (zero BN scale on the projection): deep stacks
        # train stably from the first step, without normalization at run time.
        nn.init.zeros_(self.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResizeConvUp(nn.Sequential):
    """Nearest 2x resize then a separable conv: upsampling without checkerboard artifacts."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), SeparableConv(c_in, c_out))


class CompactGenerator(nn.Module):
    """A member of the compact family. forward: (N,3,H,W) in [-1,1] -> (N,3,H,W) in [-1,1]."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.subpixel = config.tail == "subpixel"
        # built in forward order: a seed gives the same weights as before the subpixel tail
        if self.subpixel:
            self.stem = ConvBNReLU(3, 2 * c, 3, stride=2)
            self.down = nn.Sequential(SeparableConv(2 * c, 4 * c, stride=2))
        else:
            self.stem = ConvBNReLU(3, c, 3)
            self.down = nn.Sequential(SeparableConv(c, 2 * c, stride=2),
                                      SeparableConv(2 * c, 4 * c, 2))
        self.body = nn.Sequential(
            *(InvertedResidual(4 * c, config.expansion) for _ in range(config.blocks))
        )
        if self.subpixel:
            self.up = nn.Sequential(ResizeConvUp(4 * c, 2 * c))
            self.head = nn.Sequential(nn.Conv2d(2 * c, 3 * 4, 1), nn.PixelShuffle(2),
                                      nn.Tanh())
        else:
            self.up = nn.Sequential(ResizeConvUp(4 * c, 2 * c), ResizeConvUp(2 * c, c))
            self.head = nn.Sequential(nn.Conv2d(c, 3, 3, padding=1), nn.Tanh())

    def feature_layers(self) -> list[nn.Module]:
        """Where distillation taps features: three at 1/4 resolution (4c ch), one at 1/2 (2c ch)."""
        middle = self.body[max(len(self.body) // 2 - 1, 0)]
        return [self.down, middle, self.body, self.up[0]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            _check_input(x)  # an export trace must not bake the input's shape into the graph
        stem = self.stem(x)
        up = self.up(self.body(self.down(stem)))
        # the subpixel tail's stem and up meet at 1/2 resolution with the same width
        return self.head(up + stem if self.subpixel else up)


def _check_input(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"generator input must be (N, 3, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(
            f"generator input height and width must be multiples of {SIZE_MULTIPLE}, "
            f"got {size_text(height, width)}"
        )
