"""Deprecated home of the subscriber client: it moved to stylecast.stream.client.

Kept for one release so `from stylecast.daemon.client import Subscriber` still works.
"""

from __future__ import annotations

import warnings

from stylecast.stream.client import Frame, Subscriber

__all__ = ["Frame", "Subscriber"]

warnings.warn("stylecast.daemon.client moved to stylecast.stream.client; the old name goes away "
              "in the next release", DeprecationWarning, stacklevel=2)
