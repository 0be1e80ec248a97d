"""Shared fixtures: real photos that ship with scikit-image, and real stylecastd processes in
short temp folders."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The tests' tensors are small: one intra-op thread is fastest, and two threads sharing a busy
# 2-core machine spin-wait on each other (measured: 4 s with one thread against 3-45 s with two).
# Set before torch is imported, so this process and the commands the tests start both see it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def photo_rgb() -> np.ndarray:
    """The astronaut photo, cropped to 480x640 uint8 RGB (H, W, 3)."""
    from skimage import data

    image = data.astronaut()  # 512x512x3 uint8
    return np.ascontiguousarray(np.pad(image, ((0, 0), (64, 64), (0, 0)), mode="reflect")[:480])



def _save(folder, name: str, image: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name)


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory):
    """Real photos (content), real textures (style) and held-out photos, as small image files.

    content/: astronaut, chelsea, coffee, rocket (jpg/png, one in a subfolder)
    style/:   brick, grass, gravel textures (png, grayscale made RGB)
    heldout/: camera, clock, coins, hubble: photos the training never saw
    """
    from skimage import data

    root = tmp_path_factory.mktemp("images")
    gray = lambda image: np.repeat(image[..., None], 3, axis=2)  # noqa: E731
    _save(root / "content", "astronaut.jpg", data.astronaut()[:400, 50:450])
    _save(root / "content", "chelsea.png", data.chelsea())
    _save(root / "content" / "more", "coffee.jpg", data.coffee())
    _save(root / "content", "rocket.jpg", data.rocket())
    _save(root / "style", "brick.png", gray(data.brick()))
    _save(root / "style", "grass.png", gray(data.grass()))
    _save(root / "style", "gravel.png", gray(data.gravel()))
    _save(root / "heldout", "camera.png", gray(data.camera()))
    _save(root / "heldout", "clock.png", gray(data.clock()))
    _save(root / "heldout", "coins.png", gray(data.coins()))
    _save(root / "heldout", "hubble.png", data.hubble_deep_field()[:400, :400])
    return root


@pytest.fixture
def folder():
    """A short temp folder: ipc socket paths must stay under 107 characters."""
    path = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon_with(folder):
    """start(*stylecastd args) -> a running DaemonProcess in its own subfolder; killed after."""
    from support.daemon_process import start_daemon

    started = []

    def start(*args, **kwargs):
        daemon = start_daemon(folder / f"d{len(started)}", *args, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


@pytest.fixture
def run_pipeline():
    """start(source, engine, **config overrides) -> (Pipeline, SUB socket); all stopped after."""
    from support.pipeline_doubles import pipeline_runner

    yield from pipeline_runner()


@pytest.fixture
def models(folder):
    """Two tiny styles for stylecastd: `invert` (255 - x) and `warm` (a per-channel tint)."""
    from support.tiny_models import write_tiny_model

    return {"invert": write_tiny_model(folder / "invert.onnx", style="invert"),
            "warm": write_tiny_model(folder / "warm.onnx", style="warm", tint=(60, 0, -60))}
