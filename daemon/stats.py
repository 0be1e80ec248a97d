"""Running figures of the pipeline: frames per second per stage and latency percentiles.

Stages update their own meters from their own threads; the publisher and the control socket
read snapshots.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from stylecast.stream.meters import LatencyWindow, RateMeter

# Also told of every latency sample: (name, milliseconds). The metrics' histograms, when on.
LatencyObserver = Callable[[str, float], None]


class PipelineStats:
    """Every meter of one running pipeline."""

    STAGES = ("capture", "infer", "publish")

    def __init__(self, latency_observer: LatencyObserver | None = None) -> None:
        self.started = time.monotonic()
        self.fps = {stage: RateMeter() for stage in self.STAGES}
        self.latency_ms = {name: LatencyWindow() for name in
                           ("capture_to_publish", "infer", "added")}
        self.latency_observer = latency_observer
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add_latency(self, name: str, ms: float) -> None:
        self.latency_ms[name].add(ms)
        if self.latency_observer is not None:
            self.latency_observer(name, ms)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "uptime_s": round(now - self.started, 3),
            "fps": {stage: round(meter.rate(now), 2) for stage, meter in self.fps.items()},
            "frames": {stage: meter.total for stage, meter in self.fps.items()},
            "latency_ms": {name: window.percentiles() for name, window in
                           self.latency_ms.items()},
            "counts": self.counts(),
        }
