"""Named members of the compact generator family, ordered by cost.

The figures that describe them (params, GMACs) are never typed in: `complexity.describe_presets`
computes them from the built network.
"""

from __future__ import annotations

from stylecast.core.errors import ConfigError
from stylecast.training.generator import CompactGenerator, GeneratorConfig

PRESETS: dict[str, GeneratorConfig] = {
    "swift": GeneratorConfig(channels=16, blocks=4, expansion=2, tail="subpixel"),
    "nano": GeneratorConfig(channels=16, blocks=4, expansion=2),
    "small": GeneratorConfig(channels=24, blocks=6, expansion=3),
    "base": GeneratorConfig(channels=32, blocks=9, expansion=4),
    "large": GeneratorConfig(channels=48, blocks=9, expansion=4),
}


def preset_config(name: str) -> GeneratorConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown generator preset {name!r} (choose from {', '.join(PRESETS)})"
        ) from None


def build_generator(name: str) -> CompactGenerator:
    return CompactGenerator(preset_config(name))
