"""The v1 framing (pack/parse), header builders, payload encodings and header checks of
docs/protocol.md."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from stylecast.stream.protocol import (
    PROTOCOL_VERSION,
    STATS,
    STYLIZED,
    decode_image,
    dump_json,
    encode_image,
    frame_header,
    load_header,
    pack,
    parse,
    stats_header,
)


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


DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def a_frame_header(**changes) -> dict:
    header = frame_header(seq=7, frame=9, stream="cam", t_capture_ns=10, t_capture_unix_ns=20,
                          t_publish_ns=30, width=4, height=2, fmt="rgb24", style="mosaic",
                          timing_ms={"infer": 1.23456}, dropped={"infer": 0})
    return {**header, **changes}


def test_pack_then_parse_gives_back_the_message():
    payload = bytes(range(24))
    parts = pack(STYLIZED, a_frame_header(), payload)
    message = parse([bytes(part) for part in parts])
    assert message.topic == "stylized" and message.payload == payload
    assert message.header == {**a_frame_header(), "timing_ms": {"infer": 1.235}}


def test_a_stats_message_needs_only_a_sequence_number():
    header = stats_header(seq=3, stream="cam", t_publish_ns=5)
    message = parse(pack(STATS, header, b"{}"))
    assert message.topic == "stats" and message.header["format"] == "json"


@pytest.mark.parametrize(("parts", "problem"), [
    ([b"stylized", b"{}"], "3 message parts"),
    ([b"\xff", b"{}", b""], "topic is not ASCII"),
    ([b"stylized", b'{"v": 2}', b""], "not a v1"),
    ([b"stylized", b"not json", b""], "Expecting value"),
    ([b"stylized", b"[" * 100_000, b""], "nests too deeply"),
    ([b"stylized", dump_json(a_frame_header(width="4")), b""], "'width'"),
    ([b"stylized", dump_json(a_frame_header(seq=True)), b""], "'seq'"),
    ([b"stylized", dump_json(a_frame_header(format=None)), b""], "'format'"),
    ([b"stats", dump_json({"v": 1}), b"{}"], "'seq'"),
])
def test_parse_names_what_is_wrong(parts, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse(parts)


def test_every_header_key_is_documented():
    first_cells = re.findall(r"^\| (`[^|]+)\|", DOCS.read_text(), flags=re.MULTILINE)
    table_keys = {key for cell in first_cells for key in re.findall(r"`([a-z_]+)`", cell)}
    built = set(a_frame_header()) | set(stats_header(seq=1, stream="s", t_publish_ns=1))
    assert built <= table_keys, f"undocumented header keys: {sorted(built - table_keys)}"
