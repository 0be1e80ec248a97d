"""Whether frames flow: the one rule behind systemd's WATCHDOG=1 and the /healthz endpoint.

Frames flow while the progress count moves: frames through publish, or through capture while
paused (a paused daemon with a live camera is not hung, so systemd must not restart it). The
main thread looks at the count about ten times a second (`observe`), so a hung main thread stops
both the watchdog pings and a healthy /healthz.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stylecast.daemon.pipeline import Pipeline


def progress_count(pipeline: Pipeline) -> int:
    """Frames through the last stage that should be moving: publish, or capture while paused."""
    stage = "capture" if pipeline.paused else "publish"
    return pipeline.stats.fps[stage].total


class FrameFlow:
    """When one pipeline's progress count last moved."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.moved_at: float | None = None  # monotonic seconds; None: no frame yet
        self._count = 0

    def observe(self) -> None:
        count = progress_count(self.pipeline)
        if count != self._count:
            self._count = count
            self.moved_at = time.monotonic()

    def moved_since(self, since: float) -> bool:
        moved_at = self.moved_at
        return moved_at is not None and moved_at > since

    def why_not_serving(self, within_s: float) -> str | None:
        """For /healthz: None while stylized frames go out (moved within `within_s` and not
        paused), else why not. Unlike the watchdog, a pause counts: no frame goes out."""
        if self.moved_at is None or not self.pipeline.first_published.is_set():
            return "no frame published yet"
        if self.pipeline.paused:
            return "paused: frames are captured but none are stylized or published"
        idle_s = time.monotonic() - self.moved_at
        if idle_s > within_s:
            return f"no frame published for {idle_s:.1f} s (limit {within_s:g} s)"
        return None
