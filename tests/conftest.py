"""Shared fixtures: real photos that ship with scikit-image, tensors made from them."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def photo_rgb() -> np.ndarray:
    """The astronaut photo, cropped to 480x640 uint8 RGB (H, W, 3)."""
    from skimage import data

    image = data.astronaut()  # 512x512x3 uint8
    return np.ascontiguousarray(np.pad(image, ((0, 0), (64, 64), (0, 0)), mode="reflect")[:480])

