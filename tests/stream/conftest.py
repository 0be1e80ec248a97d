"""Fixtures shared by the stream tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.tiny_models import write_tiny_model

SUB = Path(sys.executable).with_name("stylecast-sub")


@pytest.fixture
def inverting_daemon(daemon_with, folder):
    """start(source): a stylecastd on `source` with a tiny model that inverts colours, ready."""

    def start(source: str):
        model = write_tiny_model(folder / "invert.onnx", style="invert")
        started = daemon_with("--model", str(model), "--source", source)
        started.notify.wait_for("READY=1")
        return started

    return start


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
