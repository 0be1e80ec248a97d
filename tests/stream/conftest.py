"""Fixtures shared by the stream tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SUB = Path(sys.executable).with_name("stylecast-sub")


@pytest.fixture
def processes():
    """start(*args): a `stylecast-sub` process with its output captured, killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen([str(SUB), *args], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()
