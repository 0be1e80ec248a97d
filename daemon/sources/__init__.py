"""Frame sources for the daemon, chosen by URI: test://, file://, v4l2://, rtsp(s)://, gst://,
csi://, picamera2://. `open_source(uri)` makes one; the caller opens, reads and closes it."""

from __future__ import annotations

from stylecast.daemon.sources.base import (
    Captured,
    FrameSource,
    SourceEnded,
    SourceError,
    SourceStalled,
    redact,
)
from stylecast.daemon.sources.uri import SCHEMES, check_source_uri, open_source

__all__ = [
    "SCHEMES",
    "Captured",
    "FrameSource",
    "SourceEnded",
    "SourceError",
    "SourceStalled",
    "check_source_uri",
    "open_source",
    "redact",
]
