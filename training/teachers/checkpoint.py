"""`--teacher FILE`: a torch generator saved to a file, either a stylecast checkpoint (a `base` or
`large` generator trained by `stylecast-train fit` makes a good teacher for `nano`) or a
pytorch-CycleGAN-and-pix2pix ResnetGenerator state dict (`latest_net_G_A.pth`, see cyclegan.py).

Both are frozen torch modules with `feature_layers()`, so these teachers also give their
intermediate features to feature distillation (`feature_module()` is the generator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from stylecast.core.digests import file_sha256
from stylecast.core.errors import InputError
from stylecast.training.checkpoint import (
    check_payload,
    generator_from_payload,
    is_checkpoint_payload,
)
from stylecast.training.teachers.cyclegan import resnet_generator_from_state
from stylecast.training.teachers.keys import teacher_key
from stylecast.training.teachers.options import TeacherOptions
from stylecast.training.teachers.pixels import pad_to_multiple

KIND = "checkpoint"
SIZE_MULTIPLE = 4  # both generators have two stride-2 stages
RENDER_VERSION = 1  # bump when the way renders are made changes (invalidates cached renders)


def claims(source: str) -> bool:
    return True  # the fallback kind: any other file is read as a torch file


class GeneratorTeacher:
    """A frozen torch generator (N, 3, H, W) [-1, 1] -> same, in eval mode without gradients."""

    def __init__(self, generator: nn.Module, description: str, style: str | None,
                 key: str) -> None:
        self.generator = _frozen(generator)
        self.description = description
        self.style = style
        self._key = key

    def cache_key(self) -> str:
        return self._key

    @torch.no_grad()
    def render(self, images: Tensor) -> Tensor:
        """Runs where the generator is (DistillTask moves it to the run's device); returns on
        the input's device. Any size: reflect-padded to a multiple of 4 and cropped back."""
        height, width = images.shape[-2:]
        device = next(self.generator.parameters()).device
        padded = pad_to_multiple(images.to(device), SIZE_MULTIPLE)
        return self.generator(padded)[..., :height, :width].to(images.device)

    def feature_module(self) -> nn.Module | None:
        return self.generator


def load(source: str, options: TeacherOptions | None = None) -> GeneratorTeacher:
    """Reads a stylecast checkpoint or a pytorch-CycleGAN-and-pix2pix ResnetGenerator state dict;
    anything else is an InputError naming the file and the problem in one line."""
    path = Path(source)
    payload = _read(path)
    key = teacher_key(KIND, weights=file_sha256(path), version=RENDER_VERSION)
    if is_checkpoint_payload(payload):
        generator, info = generator_from_payload(check_payload(payload, path), path)
        return GeneratorTeacher(generator, f"stylecast {info.preset} generator, style "
                                f"{info.style}, {info.mode} step {info.step}", info.style, key)
    model, summary = resnet_generator_from_state(path, payload)
    if (model.input_nc, model.output_nc) != (3, 3):
        raise InputError(f"{path}: a {summary} maps {model.input_nc} to {model.output_nc} "
                         "channels; a teacher maps RGB to RGB")
    return GeneratorTeacher(model, summary, None, key)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: no such teacher file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{path}: not a readable teacher file ({_first_line(err)})") from None


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
