"""Training options: defaults, then a TOML preset (configs/train/*.toml), then command-line flags.

Validated strictly: an unknown key or a bad value is one line naming the file, key and value.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stylecast.core.errors import ConfigError
from stylecast.core.validation import NAME_PATTERN, describe
from stylecast.training.generator import SIZE_MULTIPLE
from stylecast.training.inception_loss import FEATURE_LAYERS, STYLE_LAYERS, check_layer
from stylecast.training.presets import PRESETS
from stylecast.training.teachers.options import TeacherOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelOptions(Section):
    preset: str = "swift"  # the CPU default (issue #19); nano keeps a full-resolution tail
    style_name: str = Field("", pattern=f"^$|{NAME_PATTERN}",
                            description="name recorded in the artifact; default: style folder")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset (choose from {', '.join(PRESETS)})")
        return preset


class DataOptions(Section):
    size: int = Field(256, ge=SIZE_MULTIPLE, multiple_of=SIZE_MULTIPLE)
    batch_size: int = Field(1, ge=1)
    load_scale: float = Field(1.12, ge=1.0, description="resize shorter side to size*this, crop")
    workers: int = Field(0, ge=0)


class OptimOptions(Section):
    steps: int = Field(10_000, ge=1)
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    decay_from: float = Field(0.5, ge=0, le=1, description="linear decay to 0 from this fraction")


class LossOptions(Section):
    gan: Literal["lsgan", "hinge"] = "lsgan"
    adversarial: float = Field(1.0, ge=0, description="PatchGAN; in distill, renders are real")
    cycle: float = Field(10.0, ge=0)
    identity: float = Field(0.5, ge=0, description="times cycle, as in CycleGAN")
    temporal: float = Field(10.0, ge=0, description="flow-free temporal consistency; 0 = off")
    output_l1: float = Field(10.0, ge=0, description="distill: L1 to the teacher's render")
    gradient_l1: float = Field(10.0, ge=0,
                               description="distill: L1 between image gradients (edges)")
    inception_features: float = Field(
        5.0, ge=0, description="distill: InceptionV3 feature loss to the render (per-layer "
        "normalised)")
    inception_gram: float = Field(
        5.0, ge=0, description="distill: InceptionV3 Gram (style) loss to the render")
    inception_feature_layers: list[str] = Field(default_factory=lambda: list(FEATURE_LAYERS))
    inception_gram_layers: list[str] = Field(default_factory=lambda: list(STYLE_LAYERS))
    inception_size: int = Field(0, ge=0, description="shorter side the Inception losses see; "
                                "0 = the crop as it is")
    features: float = Field(0.0, ge=0, description="distill, torch teachers: intermediate "
                            "features through 1x1 convs (GAN Compression); 0 = off")
    content: float = Field(0.0, ge=0, description="VGG-16 perceptual loss (needs vgg_weights)")
    style: float = Field(0.0, ge=0, description="VGG-16 Gram style loss (needs vgg_weights)")
    vgg_weights: str = Field("", description="local torchvision-layout VGG-16 state dict")

    @field_validator("inception_feature_layers", "inception_gram_layers")
    @classmethod
    def _known_layers(cls, layers: list[str]) -> list[str]:
        for name in layers:
            check_layer(name)
        return layers


class DiscriminatorOptions(Section):
    channels: int = Field(64, ge=1)
    layers: int = Field(3, ge=1)
    spectral_norm: bool = True
    pool: int = Field(50, ge=0, description="image pool size (0 = off)")


class DistillOptions(Section):
    scales: list[int] = Field(
        default_factory=lambda: [360, 480, 720], min_length=1,
        description="shorter sides the photos are rendered at (each >= data.size)")
    variants: int = Field(2, ge=1, description="renders per photo and scale: the photo, then "
                          "flipped and colour-jittered versions")
    jitter: float = Field(0.3, ge=0, le=1, description="strength of the colour jitter")
    ema: float = Field(0.995, ge=0, lt=1, description="decay of the weight average that is "
                       "deployed; 0 = deploy the raw student")
    memory_mb: int = Field(1024, ge=0, description="photo+render pairs kept decoded in memory "
                           "(per data-loading process); the rest is read from the cache")


class RunOptions(Section):
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    amp: bool = Field(True, description="mixed precision (CUDA only)")
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(200, ge=1)
    checkpoint_every: int = Field(200, ge=1)


class TrainOptions(Section):
    model: ModelOptions = ModelOptions()
    data: DataOptions = DataOptions()
    optim: OptimOptions = OptimOptions()
    loss: LossOptions = LossOptions()
    discriminator: DiscriminatorOptions = DiscriminatorOptions()
    distill: DistillOptions = DistillOptions()
    teacher: TeacherOptions = TeacherOptions()
    run: RunOptions = RunOptions()

    def needs_vgg(self) -> bool:
        return self.loss.content > 0 or self.loss.style > 0

    def needs_inception(self) -> bool:
        return self.loss.inception_features > 0 or self.loss.inception_gram > 0

    def distill_problem(self) -> str | None:
        """Why these options cannot distill, or None."""
        small = [scale for scale in self.distill.scales if scale < self.data.size]
        if small:
            return (f"key 'distill.scales' = {self.distill.scales}: {small[0]} is smaller than "
                    f"the crop (data.size = {self.data.size})")
        return None


# Where distillation's recipe differs from the defaults, which are CycleGAN's (fit): paired
# targets train a small student stably at a 5x higher rate with ordinary Adam momentum, and a
# PatchGAN of a quarter the width costs a sixteenth (docs/training.md, "Distillation recipe").
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "distill": {"optim": {"lr": 1e-3, "betas": [0.9, 0.999]},
                "discriminator": {"channels": 16}},
}


def load_options(
    config: Path | None, overrides: dict[str, Any], base: dict[str, Any] | None = None,
    mode: str = "fit",
) -> TrainOptions:
    """Defaults <- the mode's own (MODE_DEFAULTS) <- base (a resumed run's options) <- TOML file
    <- overrides ("optim.steps"), checked for `mode` ("fit" or "distill")."""
    tree = copy.deepcopy(MODE_DEFAULTS.get(mode, {}))
    _merge(tree, copy.deepcopy(base) if base else {})
    if config:
        _merge(tree, read_toml(config))
    for key, value in overrides.items():
        _set_dotted(tree, key, value)
    source = str(config) if config else "command line"
    try:
        options = TrainOptions.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(f"{source}: {describe(err)}") from None
    if options.needs_vgg() and not options.loss.vgg_weights:
        raise ConfigError(f"{source}: key 'loss.content'/'loss.style' > 0 needs "
                          "'loss.vgg_weights' (a local VGG-16 weights file)")
    problem = options.distill_problem() if mode == "distill" else None
    if problem:
        raise ConfigError(f"{source}: {problem}")
    return options


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """'loss.temporal=0' -> ("loss.temporal", 0), the value read as a TOML value (bare = string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE such as loss.temporal=0, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def _merge(tree: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _merge(tree[key], value)
        else:
            tree[key] = value


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"key {key!r}: {part!r} is a value, not a section")
        node = child
    node[leaf] = value


def options_as_dict(options: TrainOptions) -> dict[str, Any]:
    return options.model_dump(mode="json")
