"""What every frame source is: the frame it hands out, its errors, its interface, its pacing."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from stylecast.core.errors import StylecastError


@dataclass(frozen=True)
class Captured:
    """One frame and when it was captured.

    image: (H, W, 3) uint8 RGB, C-contiguous, owned by the caller (the source never touches it
    again). t_capture_ns is on CLOCK_MONOTONIC (time.monotonic_ns()), the sensor's timestamp
    where the backend gives one on that clock; t_capture_unix_ns is the wall clock at the same
    moment, for consumers on other hosts.
    """

    image: np.ndarray
    t_capture_ns: int
    t_capture_unix_ns: int

    @classmethod
    def now(cls, image: np.ndarray, sensor_ns: int | None = None) -> Captured:
        """Stamp `image` with the current time, or with a monotonic sensor timestamp."""
        mono_ns, unix_ns = time.monotonic_ns(), time.time_ns()
        if sensor_ns is None:
            return cls(image, mono_ns, unix_ns)
        return cls(image, sensor_ns, unix_ns - (mono_ns - sensor_ns))


class SourceError(StylecastError):
    """An opened (or opening) source failed: the pipeline reopens it with backoff."""


class SourceStalled(SourceError):
    """No frame came within the read timeout."""


class SourceEnded(Exception):
    """A finite source (a file without loop) has no more frames."""


class FrameSource(ABC):
    """A camera, stream, file or pattern that hands out RGB frames, one reader thread at a time.

    open() raises SourceError for what may come back (device missing, connection refused) and
    ConfigError for what never will (library missing, no such file). read() blocks until the
    next frame is due (at most about one frame interval, or the backend's read timeout).
    close() is idempotent and safe after a failed open().
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @property
    @abstractmethod
    def description(self) -> str:
        """Short human text, e.g. "test pattern 640x480 @ 30 fps"."""

    @property
    def on_demand(self) -> bool:
        """True when frames are made as fast as they are read (a file or pattern at fps=0) rather
        than delivered on a clock: the pipeline then reads the next one only once the previous
        was taken, instead of spinning a core on frames it would drop."""
        return False

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self, timeout_s: float) -> Captured: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


class Pacer:
    """A deadline clock: each frame is due one interval after the previous one was due.

    A caller that comes late gets its frame at once and the schedule restarts from then, so a
    slow consumer never gets a burst of frames to catch up; one faster than the rate waits.
    """

    def __init__(self) -> None:
        self._due: float | None = None

    def wait(self, interval_s: float) -> None:
        """Sleep until the next frame is due; interval 0 means as fast as possible."""
        now = time.monotonic()
        if self._due is None or interval_s <= 0:
            self._due = now
            return
        self._due += interval_s
        if self._due > now:
            time.sleep(self._due - now)
        else:
            self._due = now

    def reset(self) -> None:
        """The next frame is due at once (after a reopen or a loop restart)."""
        self._due = None


def rate_text(fps: float) -> str:
    """"30 fps", "29.97 fps", or "unpaced" for 0."""
    return f"{fps:g} fps" if fps > 0 else "unpaced"


def redact(uri: str) -> str:
    """The URI without its password, for logs: rtsp://user:***@host/path."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
