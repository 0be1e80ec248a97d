"""How a frame size is written for people and for JSON readers.

Inside the code a size is a (height, width) tuple, the order of numpy shapes. Shown to people it
is width x height ("640x480"), as cameras and screens are named; in JSON it is an object with
named keys, never a bare list whose order a reader has to guess. The `HxW` command-line flags
(`--size 480x640`) keep their documented order, and messages that echo one say so.
"""

from __future__ import annotations


def size_text(height: int, width: int) -> str:
    """'640x480' for a frame 480 high and 640 wide."""
    return f"{width}x{height}"


def size_json(height: int, width: int) -> dict[str, int]:
    """{"width": 640, "height": 480} for a frame 480 high and 640 wide."""
    return {"width": int(width), "height": int(height)}


def size_flag_text(height: int, width: int) -> str:
    """An `HxW` flag value as the flag takes it, with its order spelled out:
    '480x640 (height x width)'."""
    return f"{height}x{width} (height x width)"
