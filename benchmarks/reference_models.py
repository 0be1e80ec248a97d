"""The generators stylecast's presets are weighed against, defined here and randomly initialised.

- CycleGAN's ResNet-9 generator (Zhu et al. 2017; ngf=64, instance norm, reflection padding,
  transposed-convolution upsampling): the network most unpaired style-transfer repos ship.
- Johnson et al.'s fast style-transfer network (2016, the "TransformerNet" of PyTorch's
  examples: 9x9 convolutions at the ends, five residual blocks, nearest-upsample convolutions).
  Its head originally emits 0-255 values; here a tanh maps it to [-1, 1] like every generator
  in this project, so the same pixel wrapper serves all of them.

No trained weights are loaded: these exist only to be timed, and benchmarks/weights.py
initialises them as training would leave them (latency depends on the weights only through
values, such as subnormal ones, that take slow paths).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, *,
                    reflect: bool = True) -> list[nn.Module]:
    pad = kernel // 2
    padding = [nn.ReflectionPad2d(pad)] if reflect else []
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=0 if reflect else pad)
    return [*padding, conv, nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True)]


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_norm_relu(channels, channels, 3),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x):
        return x + self.body(x)


def cyclegan_resnet9(ngf: int = 64) -> nn.Module:
    """CycleGAN's `resnet_9blocks` generator: 11.4M parameters."""
    layers: list[nn.Module] = [*_conv_norm_relu(3, ngf, 7)]
    for factor in (1, 2):  # two stride-2 downsamplings
        layers += _conv_norm_relu(ngf * factor, ngf * factor * 2, 3, 2, reflect=False)
    layers += [_Residual(ngf * 4) for _ in range(9)]
    for factor in (4, 2):  # two stride-2 transposed convolutions back up
        layers += [nn.ConvTranspose2d(ngf * factor, ngf * factor // 2, 3, 2, padding=1,
                                      output_padding=1),
                   nn.InstanceNorm2d(ngf * factor // 2, affine=True), nn.ReLU(inplace=True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers).eval()


class _UpsampleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         *_conv_norm_relu(c_in, c_out, 3))


def johnson_transformer() -> nn.Module:
    """Johnson et al.'s fast style-transfer network: 1.7M parameters."""
    layers: list[nn.Module] = [
        *_conv_norm_relu(3, 32, 9),
        *_conv_norm_relu(32, 64, 3, 2),
        *_conv_norm_relu(64, 128, 3, 2),
        *[_Residual(128) for _ in range(5)],
        _UpsampleConv(128, 64),
        _UpsampleConv(64, 32),
        nn.ReflectionPad2d(4), nn.Conv2d(32, 3, 9), nn.Tanh(),
    ]
    return nn.Sequential(*layers).eval()


REFERENCES: dict[str, Callable[[], nn.Module]] = {
    "johnson": johnson_transformer,
    "cyclegan-resnet9": cyclegan_resnet9,
}
