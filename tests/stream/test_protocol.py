"""The v1 payload encodings and header checks of docs/protocol.md."""

from __future__ import annotations

import io

import numpy as np
import pytest

from stylecast.stream.protocol import PROTOCOL_VERSION, decode_image, encode_image, load_header


def header_for(image: np.ndarray, fmt: str) -> dict:
    return {"v": PROTOCOL_VERSION, "format": fmt, "height": image.shape[0],
            "width": image.shape[1]}


@pytest.mark.parametrize("fmt", ["rgb24", "bgr24"])
def test_packed_pixel_payloads_round_trip_exactly(photo_rgb, fmt):
    payload = encode_image(photo_rgb, fmt)
    assert memoryview(payload).nbytes == photo_rgb.size
    raw = bytes(memoryview(payload))
    first = tuple(raw[:3])
    expected = tuple(photo_rgb[0, 0]) if fmt == "rgb24" else tuple(photo_rgb[0, 0, ::-1])
    assert first == expected
    np.testing.assert_array_equal(decode_image(header_for(photo_rgb, fmt), raw), photo_rgb)


def test_jpeg_payload_is_a_jpeg_file_any_library_reads(photo_rgb):
    from PIL import Image

    payload = encode_image(photo_rgb, "jpeg", jpeg_quality=90)
    assert bytes(payload[:2]) == b"\xff\xd8" and len(payload) < photo_rgb.size / 5
    decoded = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
    assert decoded.shape == photo_rgb.shape
    assert np.abs(decoded.astype(int) - photo_rgb).mean() < 4
    ours = decode_image(header_for(photo_rgb, "jpeg"), payload)
    assert np.abs(ours.astype(int) - decoded).mean() < 1.5


def test_payload_that_does_not_match_its_header_is_refused(photo_rgb):
    header = header_for(photo_rgb, "rgb24")
    with pytest.raises(ValueError):
        decode_image(header, bytes(encode_image(photo_rgb, "rgb24"))[:-3])
    with pytest.raises(ValueError, match="png"):
        decode_image({**header, "format": "png"}, b"")


@pytest.mark.parametrize("data", [b'{"v": 2}', b"[1]", b'{"seq": 1}'])
def test_headers_of_another_version_are_refused(data):
    with pytest.raises(ValueError, match="v1"):
        load_header(data)
