"""Training checkpoints: one file holds the deployable generator and everything to resume.

    {"format": "stylecast-checkpoint", "version": 1, "mode": "fit" | "distill", "step": N,
     "preset": "nano", "generator_config": {...}, "style": "mosaic",
     "generator": state_dict,            # the content->style generator that export deploys
     "train_state": {...},               # nets, optimizers, schedulers, scaler, pool, RNG
     "options": {...}}                   # the resolved training options, for the record

Files are written atomically (temp file + rename) and read with torch.load(weights_only=True):
a checkpoint can carry tensors and plain values, never code. A full disk while saving is one
DiskFullError line (file, size needed, space free; exit 1), and the previous file stays whole.
A nano run's checkpoint is about 69 MB: its two discriminators (11 MB each) and their Adam
moments (44 MB) dwarf the 0.34 MB generator.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stylecast.core.atomic import atomic_path
from stylecast.core.errors import InputError
from stylecast.training.generator import CompactGenerator, GeneratorConfig

CHECKPOINT_FORMAT = "stylecast-checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.ckpt"


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about its generator, without the training state."""

    mode: str
    step: int
    preset: str
    generator_config: GeneratorConfig
    style: str


def save_checkpoint(
    path: str | Path, *, info: CheckpointInfo, generator: torch.nn.Module,
    train_state: dict[str, Any], options: dict[str, Any],
) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "mode": info.mode,
        "step": info.step,
        "preset": info.preset,
        "generator_config": dataclasses.asdict(info.generator_config),
        "style": info.style,
        "generator": _cpu(generator.state_dict()),
        "train_state": train_state,
        "options": options,
    }
    with atomic_path(path, size_hint=_tensor_bytes(payload)) as tmp, open(tmp, "wb") as f:
        # Into a Python file object, not a path: on a full disk torch's own C++ writer reports
        # only "unexpected pos ..."; through Python the ENOSPC OSError is the RuntimeError's
        # cause, which atomic_path turns into one DiskFullError line (old checkpoint untouched).
        torch.save(payload, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a stylecast checkpoint; InputError (exit 78) names the file and problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):  # what torch.save writes
        raise InputError(f"{path}: not a PyTorch checkpoint file (not a torch.save archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{path}: not a readable checkpoint ({_first_line(err)})") from None
    return check_payload(payload, path)


def is_checkpoint_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def check_payload(payload: Any, path: str | Path) -> dict[str, Any]:
    """The checks of load_checkpoint, for a payload already read from `path`."""
    if not is_checkpoint_payload(payload):
        raise InputError(f"{path}: not a stylecast checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: checkpoint version {payload.get('version')!r} is not one this stylecast "
            f"reads ({CHECKPOINT_VERSION})"
        )
    missing = [key for key in ("mode", "step", "preset", "generator_config", "style",
                               "generator") if key not in payload]
    if missing:
        raise InputError(f"{path}: checkpoint is missing {', '.join(missing)}")
    return payload


def checkpoint_info(payload: dict[str, Any]) -> CheckpointInfo:
    return CheckpointInfo(
        mode=payload["mode"], step=payload["step"], preset=payload["preset"],
        generator_config=GeneratorConfig(**payload["generator_config"]), style=payload["style"],
    )


def load_generator(path: str | Path) -> tuple[CompactGenerator, CheckpointInfo]:
    """The deployable generator of a checkpoint, in eval mode, and what the checkpoint says."""
    return generator_from_payload(load_checkpoint(path), path)


def generator_from_payload(payload: dict[str, Any],
                           path: str | Path) -> tuple[CompactGenerator, CheckpointInfo]:
    """The generator of a checked payload (see check_payload); `path` names it in errors."""
    info = checkpoint_info(payload)
    generator = CompactGenerator(info.generator_config)
    try:
        generator.load_state_dict(payload["generator"])
    except RuntimeError as err:
        raise InputError(f"{path}: generator weights do not fit preset {info.preset!r} "
                         f"({_first_line(err)})") from None
    return generator.eval(), info


def _tensor_bytes(value: Any) -> int:
    """The bytes of every tensor in a payload: about the size of its checkpoint file."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in state.items()}


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
