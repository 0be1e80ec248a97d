"""Live style controls (issue #20) on real stylecastd processes and the test card: strength
blends the stylized picture with the camera's, smoothing calms a still scene, both are set in
the config or live, show in every frame header, in `status` and `styles`, and take effect from
the next frame on without holding the stream up."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from stylecast.daemon.sources.pattern import draw_card
from stylecast.stream.protocol import decode_image

from support.daemon_process import receive

STILL = "test://?width=64&height=48&fps=30&motion=0"
STILL_NOISY = STILL + "&noise=12"  # a still scene through a camera: every frame a bit different
FRAMES_TO_WAIT = 60  # frames to receive, at most, before a change must have shown
START_S = 120.0  # to READY=1 on a busy shared machine, where imports alone can take 30 s
# ONNX Runtime named, so that "auto" does not time a second runtime at load: these tests are
# about frames, not runtimes.
ENGINE = '[engine]\nruntime = "onnxruntime"\n'


def styles_config(folder, models, extra: str = "") -> str:
    config = folder / "styles.toml"
    config.write_text(ENGINE + "[styles.models]\n" + "".join(
        f'{name} = "{path}"\n' for name, path in models.items()) + extra)
    return str(config)


@pytest.fixture
def start(daemon_with, folder, models):
    """start(*style names, source=, extra=config text) -> a daemon whose frames flow."""

    def start(*names: str, source: str = STILL, extra: str = ""):
        config = styles_config(folder, {name: models[name] for name in names}, extra)
        daemon = daemon_with("--config", config, "--source", source)
        daemon.notify.wait_for("READY=1", START_S)
        daemon.notify.keep_draining()
        return daemon

    return start


def frame_with(sub, **wanted: float) -> tuple[dict, np.ndarray]:
    """The first frame whose header has the `wanted` values (strength, smoothing)."""
    for _ in range(FRAMES_TO_WAIT):
        _, header, payload = receive(sub)
        if all(header[key] == value for key, value in wanted.items()):
            return header, decode_image(header, payload).astype(np.int16)
    raise AssertionError(f"no frame with {wanted} in {FRAMES_TO_WAIT} frames")


def test_half_strength_is_the_halfway_blend_of_the_camera_and_the_style(start):
    daemon = start("warm")
    sub = daemon.subscribe(b"stylized")
    frames = {}
    for strength in (1.0, 0.0, 0.5):
        reply = daemon.request({"cmd": "set_strength", "value": strength})
        assert reply == {"ok": True, "style": "warm", "strength": strength, "smoothing": 0.0}
        frames[strength] = frame_with(sub, strength=strength)[1]
    assert np.array_equal(frames[0.0], draw_card(48, 64))  # strength 0: the camera's frame
    assert np.abs(frames[1.0] - frames[0.0]).max() == 60  # the warm tint, whole
    halfway = (frames[1.0] + frames[0.0]) / 2
    assert np.abs(frames[0.5] - halfway).max() <= 0.5  # the blend, within rounding


def test_a_change_shows_from_the_next_frame_and_the_stream_goes_on(start):
    daemon = start("invert")
    sub = daemon.subscribe(b"stylized")
    receive(sub)
    assert daemon.request({"cmd": "set_strength", "value": 0.3})["ok"]
    answered_ns = time.monotonic_ns()
    seqs = []
    for _ in range(FRAMES_TO_WAIT):
        _, header, _ = receive(sub)
        seqs.append(header["seq"])
        timing = header["timing_ms"]
        mixed_ns = header["t_capture_ns"] + 1e6 * (timing["queue_infer"] + timing["infer"]
                                                   + timing["mix"])
        if mixed_ns > answered_ns:  # made after the reply: it must have the new strength
            assert header["strength"] == 0.3, header
            break
    else:
        raise AssertionError("no frame made after the reply arrived")
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost on the way


def test_smoothing_calms_a_still_noisy_scene(start):
    daemon = start("invert", source=STILL_NOISY)
    sub = daemon.subscribe(b"stylized")

    def frame_to_frame_difference(smoothing: float) -> float:
        frames = [frame_with(sub, smoothing=smoothing)[1] for _ in range(12)]
        frames = frames[4:]  # the running average settles first
        return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]))

    raw = frame_to_frame_difference(0.0)
    assert daemon.request({"cmd": "set_smoothing", "value": 0.8})["ok"]
    smoothed = frame_to_frame_difference(0.8)
    assert raw > 3  # the noise shows through the model as shimmer
    assert smoothed < 0.5 * raw, (raw, smoothed)


def test_the_config_sets_them_per_style_and_the_control_socket_names_them(start):
    daemon = start("invert", "warm", extra="[styles.warm]\nstrength = 0.25\nsmoothing = 0.5\n")
    sub = daemon.subscribe(b"stylized", b"raw")
    header = frame_with(sub, strength=1.0)[0]  # invert, the first style, is untuned
    assert (header["style"], header["smoothing"]) == ("invert", 0.0)
    assert daemon.request({"cmd": "set_style", "style": "warm"})["ok"]
    header = frame_with(sub, strength=0.25)[0]
    assert (header["style"], header["smoothing"]) == ("warm", 0.5)
    reply = daemon.request({"cmd": "set_smoothing", "value": 0.1, "style": "invert"})
    assert reply == {"ok": True, "style": "invert", "strength": 1.0, "smoothing": 0.1}
    status = daemon.request({"cmd": "status"})
    assert (status["style"], status["strength"], status["smoothing"]) == ("warm", 0.25, 0.5)
    assert status["topics"] == ["stylized", "stats"]
    styles = {s["name"]: s for s in daemon.request({"cmd": "styles"})["styles"]}
    assert (styles["invert"]["strength"], styles["invert"]["smoothing"]) == (1.0, 0.1)
    assert (styles["warm"]["strength"], styles["warm"]["smoothing"]) == (0.25, 0.5)


@pytest.mark.parametrize("request_, error", [
    ({"cmd": "set_strength", "value": 1.5},
     "'set_strength' argument 'value' = 1.5: Input should be less than or equal to 1"),
    ({"cmd": "set_smoothing", "value": -0.1},
     "'set_smoothing' argument 'value' = -0.1: Input should be greater than or equal to 0"),
    ({"cmd": "set_strength", "value": "0.5"},
     "'set_strength' argument 'value' = \"0.5\": Input should be a valid number"),
    ({"cmd": "set_strength"}, "'set_strength' needs argument 'value'"),
    ({"cmd": "set_strength", "value": 0.5, "style": "nope"},
     "unknown style 'nope'; configured: invert, warm"),
])
def test_bad_values_get_a_clear_error_and_change_nothing(start, request_, error):
    daemon = start("invert", "warm")
    assert daemon.request(request_) == {"ok": False, "error": error}
    status = daemon.request({"cmd": "status"})
    assert (status["strength"], status["smoothing"]) == (1.0, 0.0)


def test_a_bad_strength_in_the_config_stops_the_start_with_one_line(daemon_with, folder, models):
    config = styles_config(folder, models, "[styles.warm]\nstrength = 1.5\n")
    daemon = daemon_with("--config", config, "--source", STILL)
    code, err = daemon.wait(START_S)
    assert code == 78, err
    assert err.strip().splitlines() == [
        f"stylecastd: error: {config}: key 'styles.warm.strength' = 1.5: Input should be less "
        "than or equal to 1"]
