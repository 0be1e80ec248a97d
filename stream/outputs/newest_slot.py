"""A one-item slot between stylecast-sub's loop and an output's own thread: the newest item
wins, an item replaced before it was taken is counted as skipped. Never a queue."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestSlot(Generic[T]):
    def __init__(self) -> None:
        self.skipped = 0
        self._item: T | None = None
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.skipped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout_s: float) -> T | None:
        """The newest item not yet taken, or None after `timeout_s` or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        """Wake the taker for good; an item still in the slot is skipped."""
        with self._cond:
            if self._item is not None:
                self.skipped += 1
                self._item = None
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
