"""The training loop shared by `fit` and `distill`: schedule, logging, samples, checkpoints, resume.

A Task (cyclegan_task.py, distill_task.py) owns its networks, optimizers and losses and performs
one optimisation step; the Trainer drives it. RUN/last.ckpt is rewritten atomically every
`run.checkpoint_every` steps, at the end, and when the run is interrupted (SIGINT/SIGTERM), so a
killed run resumes with `--resume` from its newest checkpoint at the right step.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from stylecast.core.atomic import atomic_write_text, remove_stale_temporaries
from stylecast.training.checkpoint import LAST, CheckpointInfo, save_checkpoint
from stylecast.training.options import TrainOptions, options_as_dict
from stylecast.training.runlog import RunLog
from stylecast.training.runtime import (
    Runtime,
    rng_state,
    seed_everything,
    set_rng_state,
    unwrap,
)

log = logging.getLogger(__name__)


class Task(Protocol):
    mode: str

    def networks(self) -> dict[str, nn.Module]: ...
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...
    def deployable(self) -> nn.Module: ...
    def sample_row(self, image: torch.Tensor) -> list[torch.Tensor]: ...
    def extra_state(self) -> dict[str, Any]: ...
    def load_extra_state(self, state: dict[str, Any]) -> None: ...


def linear_decay(steps: int, decay_from: float):
    """Constant learning rate, then linear decay to zero over the last part (CycleGAN's policy)."""
    start = int(steps * decay_from)

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - start))

    return factor


class Trainer:
    def __init__(self, task: Task, options: TrainOptions, run_dir: Path, runtime: Runtime,
                 preset: str, style: str) -> None:
        self.task = task
        self.options = options
        self.run_dir = run_dir
        self.runtime = runtime
        self.preset = preset
        self.style = style
        self.step = 0
        decay = linear_decay(options.optim.steps, options.optim.decay_from)
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, decay)
            for name, opt in task.optimizers().items()
        }
        self._stop_signal: int | None = None

    # --- checkpoints ---------------------------------------------------------------------------

    def train_state(self) -> dict[str, Any]:
        return {
            "networks": {k: unwrap(v).state_dict() for k, v in self.task.networks().items()},
            "optimizers": {k: v.state_dict() for k, v in self.task.optimizers().items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "task": self.task.extra_state(),
            "rng": rng_state(),
        }

    def restore(self, payload: dict[str, Any]) -> None:
        state = payload["train_state"]
        for name, network in self.task.networks().items():
            unwrap(network).load_state_dict(state["networks"][name])
        for name, optimizer in self.task.optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.task.load_extra_state(state["task"])
        for stale in remove_stale_temporaries(self.run_dir / LAST):
            log.info("removed %s, left by a run that was killed while saving", stale.name)
        self.step = int(payload["step"])
        if self.runtime.is_main:
            set_rng_state(state["rng"])
        else:  # only rank 0's RNG is saved; the others get a fresh, distinct stream
            seed_everything(self.options.run.seed + self.runtime.rank + self.step)

    def save(self) -> None:
        if not self.runtime.is_main:
            return
        generator = unwrap(self.task.deployable())
        info = CheckpointInfo(mode=self.task.mode, step=self.step, preset=self.preset,
                              generator_config=generator.config, style=self.style)
        save_checkpoint(self.run_dir / LAST, info=info, generator=generator,
                        train_state=self.train_state(), options=options_as_dict(self.options))

    # --- the loop ------------------------------------------------------------------------------

    def run(self, batches: Iterator[dict[str, torch.Tensor]], samples: torch.Tensor) -> int | None:
        """Train until the last step or a stop signal; returns the signal that stopped it."""
        run = self.options.run
        total = self.options.optim.steps
        runlog = RunLog(self.run_dir, self.step) if self.runtime.is_main else None
        if self.runtime.is_main:
            atomic_write_text(self.run_dir / "options.json",
                              json.dumps(options_as_dict(self.options), indent=2) + "\n")
        progress = tqdm(total=total, initial=self.step, desc=self.task.mode, unit="step",
                        disable=not self.runtime.is_main, dynamic_ncols=True)
        previous = self._catch_stop_signals()
        last_time, last_step = time.perf_counter(), self.step
        try:
            while self.step < total and self._stop_signal is None:
                losses = self.task.train_step(next(batches))
                for scheduler in self.schedulers.values():
                    scheduler.step()
                self.step += 1
                progress.update(1)
                if runlog and (self.step % run.log_every == 0 or self.step == total):
                    now = time.perf_counter()
                    speed = (self.step - last_step) / max(now - last_time, 1e-9)
                    last_time, last_step = now, self.step
                    progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                    runlog.scalars(self.step, {**losses, "lr": self._lr(), "it_per_s": speed})
                if runlog and (self.step % run.sample_every == 0 or self.step == total):
                    runlog.samples(self.step, self._sample_rows(samples))
                if self.step % run.checkpoint_every == 0 or self.step == total:
                    self.save()
            if self._stop_signal is not None:
                log.warning("stopping on signal %d at step %d; saving a checkpoint",
                            self._stop_signal, self.step)
                self.save()
        finally:
            self._restore_signals(previous)
            progress.close()
            if runlog:
                runlog.close()
        return self._stop_signal

    def _sample_rows(self, samples: torch.Tensor) -> list[list[torch.Tensor]]:
        generator = unwrap(self.task.deployable())
        was_training = generator.training
        generator.eval()  # show what export will deploy: BatchNorm with running statistics
        try:
            with torch.no_grad():
                return [self.task.sample_row(image[None].to(self.runtime.device))
                        for image in samples]
        finally:
            generator.train(was_training)

    def _lr(self) -> float:
        first = next(iter(self.task.optimizers().values()))
        return float(first.param_groups[0]["lr"])

    def _catch_stop_signals(self) -> dict[int, Any]:
        def request_stop(signum: int, _frame: Any) -> None:
            self._stop_signal = signum

        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may set handlers (e.g. a run started by a test)
        return {signum: signal.signal(signum, request_stop)
                for signum in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
