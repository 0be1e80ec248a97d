"""Timing an engine the same way everywhere: warm-up runs, then timed runs within a budget."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to time one case: at least `min_runs` runs, then stop at `seconds` or `max_runs`."""

    warmup: int = 2
    min_runs: int = 3
    max_runs: int = 60
    seconds: float = 3.0


QUICK = Budget(warmup=1, min_runs=2, max_runs=5, seconds=0.3)
FULL = Budget()


@dataclass(frozen=True)
class Timed:
    ms: list[float]
    outputs: list[np.ndarray]  # the output of each input frame (from its first timed run)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)

    @property
    def fps(self) -> float:
        return 1000.0 / self.median_ms


def time_engine(engine: Callable[[np.ndarray], np.ndarray], frames: Sequence[np.ndarray],
                budget: Budget) -> Timed:
    """Run `engine` over `frames` round-robin; milliseconds of every timed run, one output each."""
    for index in range(budget.warmup):
        engine(frames[index % len(frames)])
    ms: list[float] = []
    outputs: list[np.ndarray] = []
    deadline = time.perf_counter() + budget.seconds
    run = 0
    while run < budget.max_runs and (run < max(budget.min_runs, len(frames))
                                     or time.perf_counter() < deadline):
        frame = frames[run % len(frames)]
        start = time.perf_counter()
        output = engine(frame)
        ms.append((time.perf_counter() - start) * 1000)
        if run < len(frames):
            outputs.append(output)
        run += 1
    return Timed(ms, outputs)
