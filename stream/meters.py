"""Running meters: events per second over a sliding window, and latency percentiles.

Both are bounded (memory stays flat over months of uptime) and safe to update from one thread
while another reads them. The daemon's pipeline and the subscriber client both use them.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

RATE_WINDOW_S = 2.0
LATENCY_SAMPLES = 300


class RateMeter:
    """Events per second over the last RATE_WINDOW_S seconds, plus a running total."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self.total = 0
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.total += 1
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyWindow:
    """The last LATENCY_SAMPLES durations in milliseconds, summarised as percentiles."""

    def __init__(self, samples: int = LATENCY_SAMPLES) -> None:
        self._values: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(ms)

    def percentiles(self) -> dict[str, float | None]:
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
        if not values.size:
            return {"p50": None, "p95": None, "p99": None}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3),
                "p99": round(float(p99), 3)}
