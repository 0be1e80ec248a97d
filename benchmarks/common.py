"""What every benchmark section shares: its result type, and how figures are summarised."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from stylecast.core.sizes import size_text


@dataclass
class Section:
    """One section's results: rows of figures, the columns to print, and what it could not run.

    `columns` maps a row key to its table header, in print order. A section that cannot run on
    this machine has no rows and says why in `skipped`; targets it checks go into `targets`.
    """

    name: str
    title: str
    columns: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Target:
    """A number docs/architecture.md asks for, and what this run measured."""

    name: str        # e.g. "daemon fps / bare engine fps"
    wanted: str      # e.g. ">= 0.95"
    measured: float
    met: bool


def headline_size(model_rows: list[dict[str, Any]]) -> str:
    """The size the README and plot show: camera frames (640x480) when they were measured."""
    sizes = [row["size"] for row in model_rows]
    camera = size_text(480, 640)
    return camera if camera in sizes else sizes[0]


def percentiles(values_ms: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99 of a list of milliseconds (NaN for an empty list)."""
    values = np.asarray(values_ms, dtype=np.float64)
    if values.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
