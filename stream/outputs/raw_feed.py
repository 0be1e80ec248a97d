"""The daemon's `raw` topic for the browser page's split view (raw | stylized).

Subscribed only while some browser shows it, and dropped a few seconds after the last one
stops: the daemon sends (for JPEG: encodes) a topic only while someone subscribes to it, so a
page nobody splits costs the daemon nothing. It only arrives from a daemon with
`[publish] raw = true`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stylecast.stream.client import Subscriber
from stylecast.stream.outputs.browser import LatestJpeg
from stylecast.stream.protocol import RAW
from stylecast.stream.security import ClientKeys

log = logging.getLogger(__name__)

IDLE_S = 3.0  # unsubscribe this long after the last viewer left
WAIT_S = 0.25
FRESH_S = 2.0  # a raw frame this recent means raw frames are arriving


class RawFeed:
    """Raw frames as JPEG for /raw.mjpg, from a subscription that lives while they are
    watched."""

    def __init__(self, endpoint: str, curve: ClientKeys | None = None, *,
                 subscriber: Callable[..., Subscriber] = Subscriber) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.frames = LatestJpeg()
        self._subscriber = subscriber
        self._lock = threading.Lock()
        self._viewers = 0
        self._left_at = time.monotonic()
        self._thread: threading.Thread | None = None
        self._last_frame_at: float | None = None
        self._closed = threading.Event()

    @contextmanager
    def watching(self) -> Iterator[LatestJpeg]:
        """While inside: one more viewer, and the subscription is on."""
        with self._lock:
            self._viewers += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._pump, name="stylecast-raw-feed",
                                                daemon=True)
                self._thread.start()
        try:
            yield self.frames
        finally:
            with self._lock:
                self._viewers -= 1
                self._left_at = time.monotonic()

    def state(self) -> dict[str, object]:
        """For the page: how many watch, and whether raw frames are arriving."""
        last = self._last_frame_at
        return {"viewers": self._viewers,
                "receiving": last is not None and time.monotonic() - last < FRESH_S}

    def close(self) -> None:
        self._closed.set()
        self.frames.close()
        thread = self._thread
        if thread is not None:
            thread.join(2 * WAIT_S + 1.0)

    def _pump(self) -> None:
        try:
            with self._subscriber(self.endpoint, RAW.decode(), curve=self.curve) as subscriber:
                while not self._closed.is_set() and not self._idle():
                    try:
                        frame = subscriber.next(WAIT_S)
                    except TimeoutError:
                        continue
                    self._last_frame_at = time.monotonic()
                    self.frames.put(frame)
        except Exception:  # the split view is an extra: it must not take the page down
            log.exception("the raw feed stopped")
            with self._lock:
                self._thread = None

    def _idle(self) -> bool:
        """True (and the feed marked stopped) when nobody has watched for IDLE_S."""
        with self._lock:
            if self._viewers or time.monotonic() - self._left_at < IDLE_S:
                return False
            self._thread = None
            return True
