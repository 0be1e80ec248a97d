"""Polling for a condition in tests: one helper, so every test waits and fails the same way."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from support.daemon_process import WAIT_S

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, timeout_s: float = WAIT_S,
               interval_s: float = 0.05) -> T:
    """The first truthy value of condition(), polled every interval_s; AssertionError naming
    `what` when none comes within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(interval_s)
