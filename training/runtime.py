"""Where training runs: device choice, torchrun (DDP) process groups, seeds, mixed precision."""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import torch
import torch.distributed as dist

from stylecast.core.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    amp: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def start_runtime(device: str, amp: bool) -> Runtime:
    """One process of a run. Under torchrun (WORLD_SIZE > 1) joins the process group: NCCL with
    one GPU per process, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    name = best_device() if device == "auto" else device
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
    if name == "mps" and not (torch.backends.mps.is_available()):
        raise ConfigError(f"device {device!r}: MPS is not available on this machine")
    if world_size > 1:
        if name.startswith("cuda"):
            name = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if name.startswith("cuda") else "gloo")
    resolved = torch.device(name)
    return Runtime(resolved, rank, local_rank, world_size, amp and resolved.type == "cuda")


def stop_runtime(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict[str, object]:
    state: dict[str, object] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prepare(module: torch.nn.Module, runtime: Runtime) -> torch.nn.Module:
    """Move to the run's device; wrap trainable networks in DDP when distributed."""
    module.to(runtime.device)
    trainable = any(p.requires_grad for p in module.parameters())
    if not (runtime.distributed and trainable):
        return module
    device_ids = [runtime.local_rank] if runtime.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    is_ddp = isinstance(module, torch.nn.parallel.DistributedDataParallel)
    return module.module if is_ddp else module
