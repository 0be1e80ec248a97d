"""Strength and smoothing on frames (daemon/frame_mix.py), with OpenCV and with numpy alone: the
blend and the running average within rounding of the float formulas, in place, reset when they
must be, and nothing done at the defaults."""

from __future__ import annotations

import numpy as np
import pytest

from stylecast.daemon.config import StyleTuning
from stylecast.daemon.frame_mix import FrameMixer


@pytest.fixture(params=["opencv", "numpy"])
def mixer(request) -> FrameMixer:
    return FrameMixer(opencv=request.param == "opencv")


@pytest.fixture
def pictures(photo_rgb) -> tuple[np.ndarray, np.ndarray]:
    """(a stylized picture, the camera frame it was made from): two real, different images."""
    frame = np.ascontiguousarray(photo_rgb[::4, ::4])
    stylized = np.ascontiguousarray(255 - frame[:, ::-1])
    return stylized, frame


def tuning(**values: float) -> StyleTuning:
    return StyleTuning(**values)


@pytest.mark.parametrize("strength", [0.0, 0.25, 0.5, 0.6, 0.99])
def test_strength_blends_the_stylized_picture_with_the_frame(mixer, pictures, strength):
    stylized, frame = pictures
    expected = strength * stylized.astype(float) + (1 - strength) * frame
    shown = mixer.apply(stylized.copy(), frame, tuning(strength=strength), "a")
    assert shown.dtype == np.uint8 and shown.shape == frame.shape
    assert np.abs(shown - expected).max() <= 1.0  # rounding: numpy weighs in 1/256 steps
    if strength == 0.0:
        assert np.array_equal(shown, frame)


def test_the_defaults_cost_nothing(mixer, pictures):
    stylized, frame = pictures
    assert mixer.apply(stylized, frame, tuning(), "a") is stylized


def test_the_engine_buffer_is_written_in_place_and_the_frame_never(mixer, pictures):
    stylized, frame = pictures
    before = frame.copy()
    buffer = stylized.copy()
    assert mixer.apply(buffer, frame, tuning(strength=0.5), "a") is buffer
    assert np.array_equal(frame, before)
    read_only = stylized.copy()
    read_only.flags.writeable = False
    shown = mixer.apply(read_only, frame, tuning(strength=0.5), "a")
    assert shown is not read_only and np.array_equal(read_only, stylized)
    aliased = frame  # an engine that hands back its input: the raw topic must stay untouched
    mixer.apply(aliased, frame, tuning(strength=0.5, smoothing=0.5), "a")
    assert np.array_equal(frame, before)


def test_smoothing_is_a_running_average_of_the_stylized_frames(mixer, pictures):
    first, frame = pictures
    second = np.ascontiguousarray(first[::-1])
    assert np.array_equal(mixer.apply(first.copy(), frame, tuning(smoothing=0.75), "a"), first)
    shown = mixer.apply(second.copy(), frame, tuning(smoothing=0.75), "a")
    assert np.abs(shown - (0.75 * first.astype(float) + 0.25 * second)).max() <= 0.5 + 1e-3
    again = mixer.apply(second.copy(), frame, tuning(smoothing=0.75), "a")
    expected = 0.75 * (0.75 * first.astype(float) + 0.25 * second) + 0.25 * second
    assert np.abs(again - expected).max() <= 0.5 + 1e-3  # the average is kept in float32


def test_smoothing_then_strength(mixer, pictures):
    """The running average is of stylized frames; the camera frame is blended in after it."""
    first, frame = pictures
    second = np.ascontiguousarray(first[::-1])
    both = tuning(smoothing=0.5, strength=0.5)
    mixer.apply(first.copy(), frame, both, "a")
    shown = mixer.apply(second.copy(), frame, both, "a")
    average = 0.5 * first.astype(float) + 0.5 * second
    assert np.abs(shown - (0.5 * average + 0.5 * frame)).max() <= 1.5


@pytest.mark.parametrize("change", ["style", "size", "smoothing off", "reset"])
def test_the_running_average_starts_afresh(mixer, pictures, change):
    first, frame = pictures
    second = np.ascontiguousarray(first[::-1])
    smooth = tuning(smoothing=0.9)
    mixer.apply(first.copy(), frame, smooth, "a")
    style = "b" if change == "style" else "a"
    if change == "size":
        second, frame = second[:-4].copy(), frame[:-4].copy()
    if change == "smoothing off":
        mixer.apply(first.copy(), frame, tuning(), "a")
    if change == "reset":
        mixer.reset()
    assert np.array_equal(mixer.apply(second.copy(), frame, smooth, style), second)


def test_full_smoothing_holds_the_stylized_picture(mixer, pictures):
    first, frame = pictures
    held = tuning(smoothing=1.0)
    mixer.apply(first.copy(), frame, held, "a")
    assert np.array_equal(mixer.apply(255 - first, frame, held, "a"), first)


def test_the_backend_is_named():
    assert FrameMixer(opencv=True).backend == "opencv"
    assert FrameMixer(opencv=False).backend == "numpy"
