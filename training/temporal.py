"""Temporal consistency without video or optical flow, and the flicker metric that checks it.

Training (Wang et al., AAAI 2020, "compound regularization"; daooshee/ReReVST-Code): a second
"frame" is synthesised from a still image by a random smooth warp plus a little noise, and the
generator is asked to commute with that motion:

    temporal_loss = L1( G(warp(x, f) + n), warp(G(x), f) )

The paper weights it 60 next to the other losses and finds warp-only or noise-only worse.

Evaluation: `pan_sequence` makes a clip with known motion from one photo, `warping_error` is the
mean |frame[t] - warp(frame[t+1], flow[t])| on the [0, 255] scale, and `flicker` compares the
stylized clip's warping error to the input clip's.

Flow convention (the one OpenCV's calcOpticalFlow* functions use, so estimated flows plug in):
a flow is an (N, H, W, 2) displacement in pixels, (x, y) in the last axis, and `warp` samples
backwards, out[y, x] = images[y + flow_y, x + flow_x]. The flow from frame t to frame t+1 is
therefore the one that brings frame t+1 back onto frame t: warp(frame[t+1], flow[t]) ~ frame[t].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stylecast.core.sizes import size_text

COARSE_FRACTION = 100  # the random field has one control point per ~100 px (ReReVST)
TO_8BIT = 127.5  # [-1, 1] differences -> [0, 255] differences
# Below half a gray level an 8-bit camera cannot show any change: the input clip counts as still.
STILL_INPUT_ERROR = 0.5


def random_smooth_flow(
    batch: int, height: int, width: int, *, max_shift: float = 10.0, noise_std: float = 8.0,
    device: torch.device | str | None = None, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(N, H, W, 2) smooth random displacements in pixels, (x, y) last.

    Gaussian noise (std `noise_std` px) on a coarse grid of about 1/100 of the resolution (at
    least 2x2), upsampled bilinearly and box-blurred over one grid cell, plus one uniform global
    shift in [-max_shift, max_shift] per image and axis.
    """
    coarse = (max(2, round(height / COARSE_FRACTION)), max(2, round(width / COARSE_FRACTION)))
    noise = _random(torch.randn, (batch, 2, *coarse), generator, device) * noise_std
    field = F.interpolate(noise, size=(height, width), mode="bilinear", align_corners=False)
    field = _box_blur(field, (height // coarse[0], width // coarse[1]))
    shift = (_random(torch.rand, (batch, 2, 1, 1), generator, device) * 2 - 1) * max_shift
    return (field + shift).permute(0, 2, 3, 1).contiguous()


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: out[n, :, y, x] = images[n, :, y + flow_y, x + flow_x], bilinear.

    Samples outside the image take the nearest border pixel.
    """
    n, _, height, width = images.shape
    if flow.shape != (n, height, width, 2):
        raise ValueError(
            f"flow must be (N, H, W, 2) = {(n, height, width, 2)}, got {tuple(flow.shape)}"
        )
    flow = flow.to(torch.promote_types(flow.dtype, torch.float32))
    ys, xs = torch.meshgrid(
        torch.arange(height, device=flow.device, dtype=flow.dtype),
        torch.arange(width, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    # Pixel centres to grid_sample's normalized coordinates (align_corners=False).
    grid_x = (2 * (xs + flow[..., 0]) + 1) / width - 1
    grid_y = (2 * (ys + flow[..., 1]) + 1) / height - 1
    # Sample in at least float32: float16 grid coordinates are off by up to ~1 px at 1000 px.
    dtype = torch.promote_types(images.dtype, torch.float32)
    grid = torch.stack((grid_x, grid_y), dim=-1).to(dtype)
    warped = F.grid_sample(
        images.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return warped.to(images.dtype)


def temporal_loss(
    generator: nn.Module, x: torch.Tensor, *, noise_range: tuple[float, float] = (0.001, 0.002),
    generator_rng: torch.Generator | None = None, output: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1( G(warp(x, f) + n), warp(G(x), f) ) for a fresh random smooth flow f.

    n is Gaussian noise whose std is drawn per image from `noise_range` (given for [0, 1] images,
    as in the paper) and doubled for our [-1, 1] images. Pass `output` = G(x) when the caller has
    it already, to save a forward pass. Gradients flow through both branches.
    """
    low, high = noise_range
    if not 0 <= low <= high:
        raise ValueError(f"noise_range must be 0 <= low <= high, got {noise_range}")
    n, _, height, width = x.shape
    flow = random_smooth_flow(n, height, width, device=x.device, generator=generator_rng)
    std = low + (high - low) * _random(torch.rand, (n, 1, 1, 1), generator_rng, x.device)
    noise = _random(torch.randn, tuple(x.shape), generator_rng, x.device) * (2 * std)
    moved = generator(warp(x, flow) + noise.to(x.dtype))
    if output is None:
        output = generator(x)
    return F.l1_loss(moved, warp(output, flow))


def pan_sequence(
    image: torch.Tensor, frames: int, step: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A camera pan over one image: (frames, C, H, W) clip and its (frames - 1, H, W, 2) flows.

    Frame t+1 is frame t with its content moved `step` px to the LEFT (the camera pans right):
    frame[t+1][y, x] = frame[t][y, x + step]. flow[t] is therefore (-step, 0) everywhere, so
    that warp(frame[t+1], flow[t]) = frame[t] away from the border (exactly for integer steps;
    sub-pixel steps leave bilinear resampling's small blur). The pan is centred on the image and
    frames are resampled from it directly, so integer steps never blur a frame. Content that
    enters at the right edge repeats the border column; keep frames * step well below the width.
    """
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if frames < 2:
        raise ValueError(f"a sequence needs at least 2 frames, got {frames}")
    _, height, width = image.shape
    offsets = (torch.arange(frames, device=image.device) - (frames - 1) // 2) * step
    sample_at = _constant_flow(offsets, torch.zeros_like(offsets), height, width)
    sequence = warp(image.expand(frames, *image.shape), sample_at)
    backward = torch.full((frames - 1,), -float(step), device=image.device)
    flows = _constant_flow(backward, torch.zeros_like(backward), height, width)
    return sequence, flows


def warping_error(frames: torch.Tensor, flows: torch.Tensor, border: int = 16) -> float:
    """Mean |frames[t] - warp(frames[t+1], flows[t])| on the [0, 255] scale, borders cut off."""
    if frames.dim() != 4 or frames.shape[0] < 2:
        raise ValueError(f"frames must be (T >= 2, C, H, W), got {tuple(frames.shape)}")
    height, width = frames.shape[-2:]
    if 2 * border >= min(height, width):
        raise ValueError(f"border {border} leaves nothing of {size_text(height, width)} frames")
    with torch.no_grad():
        difference = frames[:-1] - warp(frames[1:], flows)
        inside = difference[..., border : height - border, border : width - border]
        return float(inside.abs().mean()) * TO_8BIT


def flicker(outputs: torch.Tensor, inputs: torch.Tensor, flows: torch.Tensor) -> dict[str, float]:
    """Warping error of a stylized clip, of its input clip, and their ratio.

    The ratio divides by at least STILL_INPUT_ERROR (half a gray level), so it stays finite for
    synthetic pans whose input error is ~0; there it is the output error in half gray levels.
    """
    output_error = warping_error(outputs, flows)
    input_error = warping_error(inputs, flows)
    return {
        "output_warping_error": output_error,
        "input_warping_error": input_error,
        "ratio": output_error / max(input_error, STILL_INPUT_ERROR),
    }


def _constant_flow(dx: torch.Tensor, dy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N,) per-image displacements -> (N, H, W, 2) flows constant over each image."""
    flow = torch.stack((dx, dy), dim=-1).float()
    return flow[:, None, None, :].expand(-1, height, width, -1).contiguous()


def _box_blur(field: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Separable box blur of odd size (at most `size`), edges replicated, shape preserved."""
    for dim, length in ((2, size[0]), (3, size[1])):
        kernel = max(1, length - 1 + length % 2)  # the largest odd number <= length
        half = kernel // 2
        pad = (0, 0, half, half) if dim == 2 else (half, half, 0, 0)
        window = (kernel, 1) if dim == 2 else (1, kernel)
        field = F.avg_pool2d(F.pad(field, pad, mode="replicate"), window, stride=1)
    return field


def _random(
    sample, shape: tuple[int, ...], generator: torch.Generator | None,
    device: torch.device | str | None,
) -> torch.Tensor:
    """torch.rand/randn drawn on the generator's device (it must match), then moved to `device`."""
    where = generator.device if generator is not None else device
    values = sample(shape, generator=generator, device=where)
    return values if device is None else values.to(device)
