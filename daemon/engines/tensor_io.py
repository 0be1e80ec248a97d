"""Frames in and out of a model: (H, W, 3) uint8 RGB <-> the tensor its contract describes
(layout, dtype, value range, color order). Every engine feeds and reads its model through these."""

from __future__ import annotations

import numpy as np

from stylecast.core.artifact import TensorSpec


def to_model_input(frame: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the tensor `spec` describes."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.dtype} {frame.shape}")
    pixels = frame[..., ::-1] if spec.color_order == "BGR" else frame
    if spec.dtype != "uint8":
        low, high = spec.value_range
        pixels = pixels.astype(np.float32) * ((high - low) / 255.0) + low
        pixels = pixels.astype(spec.dtype)
    if spec.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)[None]
    elif spec.layout == "NHWC":
        pixels = pixels[None]
    return np.ascontiguousarray(pixels)


def from_model_output(tensor: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor `spec` describes -> (H, W, 3) uint8 RGB."""
    if spec.layout == "NCHW":
        tensor = tensor[0].transpose(1, 2, 0)
    elif spec.layout == "NHWC":
        tensor = tensor[0]
    if spec.dtype != "uint8":
        low, high = spec.value_range
        scaled = (tensor.astype(np.float32) - low) * (255.0 / (high - low))
        tensor = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    if spec.color_order == "BGR":
        tensor = tensor[..., ::-1]
    return np.ascontiguousarray(tensor)
