"""The v1 wire protocol (docs/protocol.md): multipart [topic, header, payload] messages.

header is one UTF-8 JSON object; payload is tightly packed H x W x 3 pixels (rgb24/bgr24), a
JPEG file, or for the `stats` topic a UTF-8 JSON object. Nothing that crosses a socket is ever
pickled. `pack` and `parse` are the one pair the publisher and every Python consumer use;
`frame_header` and `stats_header` are the only places a header is put together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from stylecast.core.errors import ConfigError
from stylecast.core.sizes import size_text

PROTOCOL_VERSION = 1
STYLIZED = b"stylized"
RAW = b"raw"
STATS = b"stats"
TOPICS = (STYLIZED, RAW, STATS)
PIXEL_FORMATS = ("rgb24", "bgr24", "jpeg")
# Header keys a frame message (not stats) must carry as integers.
FRAME_INT_KEYS = ("seq", "width", "height", "t_capture_ns")


class Message(NamedTuple):
    """One parsed message: `header` is checked, `payload` is as received."""

    topic: str
    header: dict[str, Any]
    payload: Any


def pack(topic: bytes, header: dict[str, Any], payload: Any) -> list[Any]:
    """The three parts of one message, in send order; `payload` is passed through uncopied."""
    return [topic, dump_json(header), payload]


def parse(parts: Sequence[Any]) -> Message:
    """The message `parts` carry; ValueError naming the problem if it is not a v1 message."""
    if len(parts) != 3:
        raise ValueError(f"expected 3 message parts [topic, header, payload], got {len(parts)}")
    topic, header_bytes, payload = parts
    try:
        topic_name = bytes(topic).decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("the topic is not ASCII") from None
    header = load_header(header_bytes)
    keys = ("seq",) if topic_name == STATS.decode() else FRAME_INT_KEYS
    bad = [key for key in keys if not _is_int(header.get(key))]
    if bad:
        raise ValueError(f"header key {bad[0]!r} is missing or not an integer")
    if topic_name != STATS.decode() and not isinstance(header.get("format"), str):
        raise ValueError("header key 'format' is missing or not a string")
    return Message(topic_name, header, payload)


def frame_header(*, seq: int, frame: int, stream: str, t_capture_ns: int,
                 t_capture_unix_ns: int, t_publish_ns: int, width: int, height: int, fmt: str,
                 style: str | None, timing_ms: dict[str, float], dropped: dict[str, int],
                 strength: float | None = None,
                 smoothing: float | None = None) -> dict[str, Any]:
    """The header of a `stylized` or `raw` frame message (`style`, `strength` and `smoothing`
    are None on `raw`)."""
    return {
        "v": PROTOCOL_VERSION, "seq": seq, "frame": frame, "stream": stream,
        "t_capture_ns": t_capture_ns, "t_capture_unix_ns": t_capture_unix_ns,
        "t_publish_ns": t_publish_ns, "width": width, "height": height, "format": fmt,
        "style": style, "strength": strength, "smoothing": smoothing,
        "timing_ms": {key: round(ms, 3) for key, ms in timing_ms.items()},
        "dropped": dropped,
    }


def stats_header(*, seq: int, stream: str, t_publish_ns: int) -> dict[str, Any]:
    """The header of a `stats` message (its payload is the stats JSON object)."""
    return {"v": PROTOCOL_VERSION, "seq": seq, "stream": stream, "t_publish_ns": t_publish_ns,
            "format": "json"}


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
        raise ValueError(f"payload has shape {image.shape}; the header's "
                         f"{size_text(height, width)} needs {(height, width, 3)}")
    return image


def dump_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def load_header(data: bytes | memoryview) -> dict[str, Any]:
    """The header object; ValueError if it is not JSON, not UTF-8 or not a v1 header."""
    try:
        header = json.loads(bytes(data).decode("utf-8"))
    except RecursionError:
        raise ValueError("the header nests too deeply") from None
    if not isinstance(header, dict) or header.get("v") != PROTOCOL_VERSION:
        raise ValueError(f"not a v{PROTOCOL_VERSION} stylecast header")
    return header


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _simplejpeg() -> Any:
    try:
        import simplejpeg
    except ImportError:
        raise ConfigError("JPEG frames need simplejpeg (pip install 'stylecast[daemon]')") from None
    return simplejpeg
