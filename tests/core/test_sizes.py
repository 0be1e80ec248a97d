"""One way to write a frame size: width x height in text, named keys in JSON, and `HxW` flags
that say their order."""

from __future__ import annotations

import argparse

import pytest

from stylecast.core.cli_types import image_size
from stylecast.core.sizes import size_flag_text, size_json, size_text


def test_text_is_width_x_height_and_json_names_both():
    assert size_text(480, 640) == "640x480"
    assert size_json(480, 640) == {"width": 640, "height": 480}
    assert size_flag_text(480, 640) == "480x640 (height x width)"


def test_the_size_flag_stays_height_first_and_says_so_when_refused():
    assert image_size("480x640") == (480, 640)
    with pytest.raises(argparse.ArgumentTypeError, match=r"HxW .*\(height x width\)"):
        image_size("640")
