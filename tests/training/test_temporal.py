"""Flow-free temporal regularizer (random smooth warp + noise) and the flicker metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

from stylecast.training.imaging import image_to_tensor
from stylecast.training.presets import build_generator
from stylecast.training.temporal import (
    flicker,
    pan_sequence,
    random_smooth_flow,
    temporal_loss,
    warp,
    warping_error,
)


def photo(name: str, size: int, top: int = 0, left: int = 0) -> torch.Tensor:
    """A size x size crop of a scikit-image photo as a (1, 3, size, size) tensor in [-1, 1]."""
    image = getattr(data, name)()
    return image_to_tensor(np.ascontiguousarray(image[top : top + size, left : left + size]))


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    return photo("astronaut", 96, top=60, left=170)


class AddsFixedPattern(nn.Module):
    """A generator that is not shift-equivariant: it stamps the same texture at the same place."""

    def __init__(self, size: int) -> None:
        super().__init__()
        pattern = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(7))
        self.register_buffer("pattern", 0.2 * pattern)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pattern


# --- random_smooth_flow ---------------------------------------------------------------------


def test_flow_shape_dtype_and_seeded_reproducibility():
    def draw() -> torch.Tensor:
        return random_smooth_flow(3, 80, 120, generator=torch.Generator().manual_seed(4))

    flow = draw()
    assert flow.shape == (3, 80, 120, 2) and flow.dtype == torch.float32
    assert torch.equal(flow, draw())
    assert not torch.equal(flow[0], flow[1])  # each image gets its own motion


def test_flow_is_smooth():
    flow = random_smooth_flow(
        4, 128, 160, max_shift=0.0, generator=torch.Generator().manual_seed(0)
    )
    for field in flow.unbind(0):  # (H, W, 2); every statistic below is per component x, y
        spread = field.amax(dim=(0, 1)) - field.amin(dim=(0, 1))
        step_y = (field[1:] - field[:-1]).abs().amax(dim=(0, 1))
        step_x = (field[:, 1:] - field[:, :-1]).abs().amax(dim=(0, 1))
        assert (spread > 2.0).all()  # a real field of several pixels, not a constant
        # neighbours move almost alike: a 2x2 grid over 128 px ramps over ~64 px
        assert (step_y < 0.03 * spread).all() and (step_x < 0.03 * spread).all()


def test_flow_global_shift_stays_within_bounds():
    flow = random_smooth_flow(
        64, 16, 16, max_shift=3.0, noise_std=0.0, generator=torch.Generator().manual_seed(0)
    )
    shifts = flow[:, 0, 0, :]
    assert torch.equal(flow, shifts[:, None, None, :].expand_as(flow))  # one shift per image
    assert shifts.abs().max() <= 3.0
    assert shifts.abs().max() > 2.0  # and it uses the range, in both axes and signs
    assert (shifts > 0).any(dim=0).all() and (shifts < 0).any(dim=0).all()


# --- warp -----------------------------------------------------------------------------------


def test_warp_with_zero_flow_is_identity(face):
    out = warp(face, torch.zeros(1, 96, 96, 2))
    torch.testing.assert_close(out, face, atol=1e-5, rtol=0)


def test_warp_with_integer_flow_is_a_roll_away_from_the_border(face):
    flow = torch.zeros(1, 96, 96, 2)
    flow[..., 0], flow[..., 1] = 3.0, -2.0  # out[y, x] = in[y - 2, x + 3]
    out = warp(face, flow)
    rolled = torch.roll(face, shifts=(2, -3), dims=(-2, -1))
    torch.testing.assert_close(out[..., 2:, :-3], rolled[..., 2:, :-3], atol=1e-5, rtol=0)
    # outside, the border pixel repeats
    torch.testing.assert_close(out[..., 2:, -1], face[..., :-2, -1], atol=1e-5, rtol=0)


def test_warp_rejects_a_flow_of_the_wrong_shape(face):
    with pytest.raises(ValueError, match="flow must be"):
        warp(face, torch.zeros(1, 96, 96))


# --- temporal_loss --------------------------------------------------------------------------


def test_identity_generator_loss_is_only_the_noise(face):
    rng = torch.Generator().manual_seed(0)
    loss = temporal_loss(nn.Identity(), face, generator_rng=rng).item()
    # G(warp(x) + n) - warp(G(x)) = n, with std in [0.002, 0.004]: E|n| = std * sqrt(2 / pi)
    assert 0.002 * 0.79 < loss < 0.004 * 0.8
    assert temporal_loss(nn.Identity(), face, noise_range=(0.0, 0.0)).item() < 1e-6


def test_generator_that_is_not_shift_equivariant_scores_far_higher(face):
    identity = temporal_loss(nn.Identity(), face, generator_rng=torch.Generator().manual_seed(0))
    stamped = temporal_loss(
        AddsFixedPattern(96), face, generator_rng=torch.Generator().manual_seed(0)
    )
    assert stamped > 20 * identity


def test_precomputed_output_gives_the_same_loss(face):
    model = AddsFixedPattern(96)
    fresh = temporal_loss(model, face, generator_rng=torch.Generator().manual_seed(3))
    given = temporal_loss(
        model, face, generator_rng=torch.Generator().manual_seed(3), output=model(face)
    )
    torch.testing.assert_close(fresh, given)


def test_gradients_reach_the_generator():
    torch.manual_seed(0)
    model = build_generator("nano")
    x = photo("chelsea", 64, top=80, left=180)
    loss = temporal_loss(model, x, generator_rng=torch.Generator().manual_seed(0))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert model.head[0].weight.grad.abs().sum() > 0
    assert model.stem[0].weight.grad.abs().sum() > 0


# --- pan_sequence, warping_error, flicker ---------------------------------------------------


def test_pan_moves_content_left_by_step(face):
    frames, flows = pan_sequence(face, 5, step=2.0)
    assert frames.shape == (5, 3, 96, 96) and flows.shape == (4, 96, 96, 2)
    assert torch.equal(flows[..., 0], torch.full((4, 96, 96), -2.0))
    assert torch.equal(flows[..., 1], torch.zeros(4, 96, 96))
    # frame[t+1][y, x] = frame[t][y, x + 2], and the middle frame is the photo itself
    torch.testing.assert_close(frames[1:, ..., 4:-8], frames[:-1, ..., 6:-6], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[2], face[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("step", [1.0, 2.0, 3.0])
def test_input_pan_has_no_warping_error_for_integer_steps(face, step):
    frames, flows = pan_sequence(face, 6, step)
    assert warping_error(frames, flows) < 1e-3


def test_sub_pixel_pan_leaves_only_resampling_blur(face):
    frames, flows = pan_sequence(face, 6, step=1.5)
    # Bilinear resampling twice blurs a little (a [1, 2, 1] / 4 kernel at worst), far less than
    # what the motion itself changes between frames.
    compensated = warping_error(frames, flows)
    uncompensated = warping_error(frames, torch.zeros_like(flows))
    assert compensated < 2.5  # gray levels out of 255
    assert compensated < 0.25 * uncompensated


def test_flickering_sequence_scores_clearly_higher_than_a_steady_one(face):
    frames, flows = pan_sequence(face, 8, step=2.0)
    # A shift-equivariant "stylization": a 3x3 blur, the same at every pixel.
    steady = nn.functional.avg_pool2d(
        nn.functional.pad(frames, (1, 1, 1, 1), mode="replicate"), 3, stride=1
    )
    noise = torch.randn(frames.shape, generator=torch.Generator().manual_seed(0))
    flickering = steady + 0.02 * noise  # each frame gets its own noise, ~2.5 gray levels
    calm = flicker(steady, frames, flows)
    jumpy = flicker(flickering, frames, flows)
    assert calm["output_warping_error"] < 0.1
    # E|n_t - n_t+1| = 0.02 * sqrt(2) * sqrt(2 / pi) * 127.5 = 2.88 gray levels
    assert jumpy["output_warping_error"] == pytest.approx(2.88, rel=0.05)
    assert jumpy["input_warping_error"] == calm["input_warping_error"] < 1e-3
    assert jumpy["ratio"] > 20 * calm["ratio"]


def test_flicker_ratio_compares_output_to_input():
    frames, flows = pan_sequence(photo("coffee", 64, top=100, left=200), 4, step=1.0)
    generator = torch.Generator().manual_seed(0)
    noisy_in = frames + 0.04 * torch.randn(frames.shape, generator=generator)
    noisy_out = frames + 0.02 * torch.randn(frames.shape, generator=generator)
    result = flicker(noisy_out, noisy_in, flows)
    assert result["ratio"] == pytest.approx(
        result["output_warping_error"] / result["input_warping_error"]
    )
    assert result["ratio"] == pytest.approx(0.5, rel=0.1)


def test_warping_error_ignores_the_border(face):
    frames, flows = pan_sequence(face, 3, step=1.0)
    spoiled = frames.clone()
    spoiled[1, :, :, :8] = 1.0  # garbage in the left border of one frame
    assert warping_error(spoiled, flows, border=16) < 1e-3
    assert warping_error(spoiled, flows, border=0) > 1.0
