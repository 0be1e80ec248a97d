"""The encoding outputs' clock (stream/outputs/video_clock.py): pts from capture times."""

from __future__ import annotations

import itertools

import numpy as np

from stylecast.stream.outputs.video_clock import RESTART_GAP_TICKS, Timestamps, even_size

FRAME_NS = 33_333_333  # 30 fps


def test_pts_are_90khz_ticks_since_the_first_capture():
    clock = Timestamps()
    start = 5_000_000_000
    assert [clock.of(start + k * FRAME_NS) for k in range(4)] == [0, 2999, 5999, 8999]


def test_a_capture_clock_that_goes_back_goes_on_one_frame_later():
    """A daemon restarted (a new monotonic clock): the pts go on a frame after the last one,
    at the frame rate again, not one tick a frame."""
    clock = Timestamps()
    last = [clock.of(9_000_000_000 + k * FRAME_NS) for k in range(3)][-1]
    after = [clock.of(1_000_000_000 + k * FRAME_NS) for k in range(3)]
    assert last + RESTART_GAP_TICKS - after[0] in (0, 1)  # the origin is kept in whole ns
    assert set(np.diff(after).tolist()) <= {2999, 3000, 3001}


def test_dither_stays_below_its_bound_and_pts_keep_growing():
    clock = Timestamps(dither_ticks=16)
    pts = [clock.of(k * FRAME_NS) for k in range(200)]
    plain = [k * FRAME_NS * 90_000 // 1_000_000_000 for k in range(200)]
    assert all(0 <= p - q < 16 for p, q in zip(pts, plain, strict=True))
    assert all(b > a for a, b in itertools.pairwise(pts))


def test_an_odd_row_and_column_are_left_out():
    assert even_size(np.zeros((481, 641, 3), np.uint8)).shape == (480, 640, 3)
    assert even_size(np.zeros((480, 640, 3), np.uint8)).shape == (480, 640, 3)
