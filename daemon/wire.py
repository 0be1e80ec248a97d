"""The v1 wire protocol (docs/protocol.md): multipart [topic, header, payload] messages.

header is one UTF-8 JSON object; payload is tightly packed H x W x 3 pixels (rgb24/bgr24), a
JPEG file, or for the `stats` topic a UTF-8 JSON object. Nothing that crosses a socket is ever
pickled.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from stylecast.daemon.errors import ConfigError

PROTOCOL_VERSION = 1
STYLIZED = b"stylized"
RAW = b"raw"
STATS = b"stats"
TOPICS = (STYLIZED, RAW, STATS)
PIXEL_FORMATS = ("rgb24", "bgr24", "jpeg")


def encode_image(image: np.ndarray, fmt: str, jpeg_quality: int = 85) -> Any:
    """The payload for an (H, W, 3) uint8 RGB image: a buffer zmq can send without copying."""
    if fmt == "rgb24":
        return np.ascontiguousarray(image)
    if fmt == "bgr24":
        return np.ascontiguousarray(image[..., ::-1])
    if fmt == "jpeg":
        return _simplejpeg().encode_jpeg(np.ascontiguousarray(image), quality=jpeg_quality,
                                         colorspace="RGB", fastdct=True)
    raise ValueError(f"unknown pixel format {fmt!r}; expected one of {PIXEL_FORMATS}")


def decode_image(header: dict[str, Any], payload: bytes | memoryview) -> np.ndarray:
    """The (H, W, 3) uint8 RGB image a frame message carries."""
    fmt, height, width = header["format"], int(header["height"]), int(header["width"])
    if fmt == "jpeg":
        image = _simplejpeg().decode_jpeg(bytes(payload), colorspace="RGB")
    elif fmt in ("rgb24", "bgr24"):
        image = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, 3)
        if fmt == "bgr24":
            image = image[..., ::-1]
    else:
        raise ValueError(f"unknown frame format {fmt!r}")
    if image.shape != (height, width, 3):
        raise ValueError(f"payload is {image.shape}, header says {height}x{width}x3")
    return image


def dump_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def load_header(data: bytes | memoryview) -> dict[str, Any]:
    header = json.loads(bytes(data).decode("utf-8"))
    if not isinstance(header, dict) or header.get("v") != PROTOCOL_VERSION:
        raise ValueError(f"not a v{PROTOCOL_VERSION} stylecast header")
    return header


def _simplejpeg() -> Any:
    try:
        import simplejpeg
    except ImportError:
        raise ConfigError("JPEG frames need simplejpeg (pip install 'stylecast[daemon]')") from None
    return simplejpeg
