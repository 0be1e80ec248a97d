"""Newest-wins mailboxes between pipeline stages: a slow stage drops frames, it never queues them.

Each key (e.g. a topic) holds at most one item. Putting an item where an unconsumed one waits
replaces it and counts a drop, so the consumer always gets the newest frame and memory stays flat
however slow it is.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any


class LatestSlots:
    """Keyed newest-wins slots sharing one condition, so one consumer can wait on all keys."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._waiting: dict[Hashable, int] = {}  # consumers blocked in take(key)
        self.dropped: dict[Hashable, int] = {}

    def put(self, key: Hashable, item: Any) -> bool:
        """Store `item` under `key`; True if it replaced (dropped) one nobody took."""
        with self._cond:
            replaced = key in self._items
            if replaced:
                self.dropped[key] = self.dropped.get(key, 0) + 1
            self._items[key] = item
            self._cond.notify()
            return replaced

    def take_all(self, timeout: float | None) -> dict[Hashable, Any]:
        """Everything waiting (at most one item per key); {} on timeout or once closed."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            items, self._items = self._items, {}
            return items

    def take(self, key: Hashable, timeout: float | None) -> Any | None:
        """The newest item under `key`, or None on timeout or once closed."""
        with self._cond:
            if key not in self._items and not self._closed:
                self._waiting[key] = self._waiting.get(key, 0) + 1
                self._cond.notify_all()  # wake a producer in wait_wanted()
                try:
                    self._cond.wait_for(lambda: key in self._items or self._closed, timeout)
                finally:
                    self._waiting[key] -= 1
            return self._items.pop(key, None)

    def wait_wanted(self, key: Hashable, timeout: float | None) -> bool:
        """Wait until a consumer waits in take(`key`) with nothing there: for producers that make
        items on demand, so an item is made when it is wanted, not long before. False on timeout
        or once closed."""
        with self._cond:
            wanted = self._cond.wait_for(
                lambda: (self._waiting.get(key, 0) and key not in self._items) or self._closed,
                timeout)
            return bool(wanted) and not self._closed

    def drops(self, key: Hashable) -> int:
        with self._cond:
            return self.dropped.get(key, 0)

    def close(self) -> None:
        """Wake every waiter; later takes return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
