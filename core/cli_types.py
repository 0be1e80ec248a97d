"""argparse value types shared by the stylecast commands."""

from __future__ import annotations

import argparse
import math
import re

from stylecast.core.sizes import size_flag_text


def image_size(text: str) -> tuple[int, int]:
    """Parse 'HxW', height first (480x640: 480 high, 640 wide), into (height, width)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or 0 in (height := int(match[1]), width := int(match[2])):
        raise argparse.ArgumentTypeError(
            f"expected HxW such as {size_flag_text(480, 640)}, got {text!r}")
    return height, width


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1 (a strength, a smoothing)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value
