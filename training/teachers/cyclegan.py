"""CycleGAN's ResNet generator, and reading the state dicts pytorch-CycleGAN-and-pix2pix saves.

`ResnetGenerator` is our own implementation of the ResNet generator of the widely used
pytorch-CycleGAN-and-pix2pix code (junyanz), laid out module for module like it so that the state
dicts that code saves (`latest_net_G_A.pth`: `net.cpu().state_dict()` or, after DataParallel,
`net.module.cpu().state_dict()`) load with strict=True:

    model.0        ReflectionPad2d(3)
    model.1-3      Conv2d(in, ngf, 7), norm, ReLU                        full resolution
    model.4-9      2 x [Conv2d(c, 2c, 3, stride 2, pad 1), norm, ReLU]    1/2, then 1/4
    model.10..     n_blocks x ResnetBlock(4 ngf)                          1/4 resolution
      .conv_block  ReflectionPad2d(1), Conv2d 3x3, norm, ReLU, [Dropout(0.5)],
                   ReflectionPad2d(1), Conv2d 3x3, norm
    then           2 x [ConvTranspose2d(c, c/2, 3, stride 2, pad 1, out pad 1), norm, ReLU]
                   ReflectionPad2d(3), Conv2d(ngf, out, 7), Tanh

Convolutions before a norm carry a bias only with InstanceNorm (affine=False, no running stats);
BatchNorm is affine. Files written by old versions of that code (or of PyTorch) also hold
running_mean / running_var / num_batches_tracked for the InstanceNorm layers; its loader drops
them, and so does `resnet_generator_from_state`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from stylecast.core.errors import InputError

NORMS = ("instance", "batch", "none")
FIRST_BLOCK = 10  # index in `model` of the first ResnetBlock: stem (4 modules) + 2 x 3 downs
_LEGACY_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    return nn.Identity()  # what that code's norm="none" builds


class ResnetBlock(nn.Module):
    """x + (pad, conv 3x3, norm, ReLU, [dropout], pad, conv 3x3, norm)(x), with reflection pads."""

    def __init__(self, channels: int, norm: str, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=use_bias),
            _norm(norm, channels), nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=use_bias),
            _norm(norm, channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator. (N, input_nc, H, W) -> (N, output_nc, H, W) in [-1, 1].

    H and W should be multiples of 4 (two stride-2 stages), or the output size differs.
    """

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
        norm: str = "instance", use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        for name, value in (("input_nc", input_nc), ("output_nc", output_nc), ("ngf", ngf),
                            ("n_blocks", n_blocks)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.input_nc, self.output_nc, self.ngf, self.n_blocks = input_nc, output_nc, ngf, n_blocks
        bias = norm == "instance"  # BatchNorm's shift makes a conv bias redundant
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), _norm(norm, ngf),
            nn.ReLU(True),
        ]
        for c in (ngf, 2 * ngf):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), _norm(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, norm, use_dropout, bias) for _ in range(n_blocks)]
        for c in (4 * ngf, 2 * ngf):
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                _norm(norm, c // 2), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def feature_layers(self) -> list[nn.Module]:
        """Distillation taps as CompactGenerator's: three at 1/4 res (4 ngf ch), one at 1/2 (2 ngf).

        The ReLU ending the downsampling, the middle and the last residual block, and the ReLU
        after the first transposed convolution.
        """
        first, n = FIRST_BLOCK, self.n_blocks
        middle = self.model[first + max(n // 2 - 1, 0)]
        return [self.model[first - 1], middle, self.model[first + n - 1], self.model[first + n + 2]]

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict saved from a DataParallel wrapper ("module.model.1.weight") without it."""
    if state and all(key.startswith("module.") for key in state):
        return {key.removeprefix("module."): value for key, value in state.items()}
    return dict(state)


def describe_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """The `ResnetGenerator(**kwargs)` a pytorch-CycleGAN-and-pix2pix state dict was saved from.

    ValueError (one line) when the keys are not that layout.
    """
    state = strip_module_prefix(state)
    stem = state.get("model.1.weight")
    if not isinstance(stem, Tensor) or stem.dim() != 4:
        raise ValueError("no 4-D 'model.1.weight' (the 7x7 input convolution)")
    blocks = sorted({int(m.group(1)) for m in map(_BLOCK_KEY.match, state) if m})
    if not blocks:
        raise ValueError("no residual blocks (no 'model.N.conv_block.*' keys)")
    if blocks != list(range(FIRST_BLOCK, FIRST_BLOCK + len(blocks))):
        raise ValueError(f"residual blocks at model.{blocks[0]}..{blocks[-1]} are not the "
                         f"consecutive run from model.{FIRST_BLOCK} that ResnetGenerator saves")
    n_blocks = len(blocks)
    head_key = f"model.{FIRST_BLOCK + n_blocks + 7}.weight"  # 2 x (up, norm, ReLU), pad, conv
    head = state.get(head_key)
    if not isinstance(head, Tensor) or head.dim() != 4:
        raise ValueError(f"no 4-D {head_key!r} (the output convolution for {n_blocks} blocks)")
    if "model.2.weight" in state:
        norm = "batch"  # affine BatchNorm; InstanceNorm here has no weight
    else:
        norm = "instance" if "model.1.bias" in state else "none"
    return {
        "input_nc": int(stem.shape[1]),
        "output_nc": int(head.shape[0]),
        "ngf": int(stem.shape[0]),
        "n_blocks": n_blocks,
        "norm": norm,
        # Dropout sits between the two convs, pushing the second from conv_block.5 to .6.
        "use_dropout": f"model.{FIRST_BLOCK}.conv_block.5.weight" not in state,
    }


def resnet_generator_from_state(path: Path, payload: Any) -> tuple[ResnetGenerator, str]:
    """The ResnetGenerator whose state dict `payload` (read from `path`) is, with a one-line
    summary of it; InputError naming the file and the problem when it is not one."""
    state = _state_dict(path, payload)
    try:
        config = describe_state_dict(state)
        model = ResnetGenerator(**config)
    except ValueError as err:
        raise InputError(f"{path}: not a pytorch-CycleGAN-and-pix2pix ResnetGenerator state "
                         f"dict ({err})") from None
    state = _drop_legacy_norm_stats(strip_module_prefix(state), model)
    problem = _fit_problem(model.state_dict(), state)
    if problem:
        raise InputError(f"{path}: weights do not fit a {_summary(config)} ({problem})")
    model.load_state_dict(state, strict=True)
    return model, _summary(config)


def _state_dict(path: Path, payload: Any) -> dict[str, Tensor]:
    neither = (f"{path}: not a stylecast checkpoint or a pytorch-CycleGAN-and-pix2pix "
               f"ResnetGenerator state dict")
    if not isinstance(payload, dict):
        raise InputError(f"{neither} (it holds a {type(payload).__name__})")
    if not all(isinstance(key, str) for key in payload):
        raise InputError(f"{neither} (its keys are not all names)")
    state = strip_module_prefix(payload)
    if "model.1.weight" not in state:
        raise InputError(f"{neither} (no 'model.1.weight')")
    odd = next((key for key, value in state.items() if not isinstance(value, Tensor)), None)
    if odd is not None:
        raise InputError(f"{neither} ({odd!r} holds a {type(state[odd]).__name__}, not a tensor)")
    return state


def _drop_legacy_norm_stats(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Without the running stats that old code saved for InstanceNorm layers (which use none)."""
    instance_norms = {name for name, m in model.named_modules() if isinstance(m, nn.InstanceNorm2d)}

    def legacy(key: str) -> bool:
        module, _, leaf = key.rpartition(".")
        return module in instance_norms and leaf in _LEGACY_NORM_BUFFERS

    return {key: value for key, value in state.items() if not legacy(key)}


def _fit_problem(expected: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> str | None:
    """What keeps `state` from loading strictly into a model with `expected`, in one line."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong = [
        f"{key} is {tuple(state[key].shape)}, expected {tuple(value.shape)}"
        for key, value in expected.items() if key in state and state[key].shape != value.shape
    ]
    parts = [f"{label} {_some(keys)}" for label, keys in
             (("missing", missing), ("unexpected", unexpected), ("shape:", wrong)) if keys]
    return "; ".join(parts) or None


def _some(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _summary(config: Mapping[str, Any]) -> str:
    text = (f"CycleGAN ResnetGenerator ngf={config['ngf']} n_blocks={config['n_blocks']} "
            f"norm={config['norm']}")
    if config["use_dropout"]:
        text += " dropout"
    if (config["input_nc"], config["output_nc"]) != (3, 3):
        text += f" channels={config['input_nc']}->{config['output_nc']}"
    return text
