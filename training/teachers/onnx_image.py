"""An image-to-image ONNX graph run by ONNX Runtime on the CPU, fed as its tensors expect.

`ImageIO` says how the graph holds an image (layout, dtype, color order, value range, and a
fixed size or the multiple a dynamic size must be of); `OnnxImageModel` turns `Teacher.render`'s
(N, 3, H, W) [-1, 1] batches into that and back: a fixed-size graph gets a resized copy whose
output is resized back, a dynamic one gets the image reflect-padded to its multiple and the
output cropped. Every ONNX teacher (a user's model, the multistyle and the arbitrary-style
networks) runs through here; they differ only in how they find their `ImageIO`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from stylecast.core.errors import ConfigError, InputError
from stylecast.core.layouts import LAYOUTS
from stylecast.core.sizes import size_text
from stylecast.training.teachers.pixels import from_unit, pad_to_multiple, resize, to_unit

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


@dataclass(frozen=True)
class ImageTensor:
    """One image tensor of a graph: its name and how it holds pixels."""

    name: str
    layout: str  # a key of stylecast.core.layouts.LAYOUTS
    dtype: str  # a key of NUMPY_DTYPES
    value_range: tuple[float, float]
    color_order: str = "RGB"

    def describe(self) -> str:
        low, high = self.value_range
        return f"{self.layout} {self.dtype} [{low:g},{high:g}] {self.color_order}"


@dataclass(frozen=True)
class ImageIO:
    input: ImageTensor
    output: ImageTensor
    size: tuple[int | None, int | None] = (None, None)  # fixed (height, width); None: any
    size_multiple: int = 1  # of the dynamic sides
    batch: int | None = 1  # images per run: 1 for a graph with a fixed batch of 1, None: any

    def describe(self) -> str:
        height, width = self.size
        if height and width:
            size = f"fixed {size_text(height, width)}"
        elif height or width:
            size = f"fixed {'height' if height else 'width'} {height or width}"
        else:
            size = f"any size (multiple of {self.size_multiple})"
        return f"{self.input.describe()} -> {self.output.describe()}, {size}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_session(model: str | Path | bytes, threads: int, source: str | Path) -> Any:
    """An ONNX Runtime session on the CPU provider; `threads` 0 leaves the count to ONNX Runtime
    (one per physical core). One-line errors name `source`."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(f"{source}: ONNX teachers need onnxruntime: "
                          "pip install 'stylecast[train]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as err:
        raise InputError(f"{source}: ONNX Runtime cannot load it ({_first_line(err)})") from None


class OnnxImageModel:
    """Runs one image graph; `extra_inputs` are fed unchanged with every image (a style
    vector, style weights). Pickles without its session (DataLoader workers that spawn make
    their own on first use)."""

    def __init__(self, graph: str | Path | bytes, io: ImageIO, source: str | Path, threads: int,
                 extra_inputs: Mapping[str, np.ndarray] | None = None) -> None:
        self.graph = graph
        self.io = io
        self.source = source
        self.threads = threads
        self.extra_inputs = dict(extra_inputs or {})
        self._session: Any = cpu_session(graph, threads, source)  # load errors show at once

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = cpu_session(self.graph, self.threads, self.source)
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_session": None}

    @torch.no_grad()
    def render(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) [-1, 1] on any device -> the graph's output in the same form."""
        unit = to_unit(images).cpu()
        step = self.io.batch or max(len(unit), 1)
        rendered = [self._render_unit(chunk) for chunk in torch.split(unit, step)]
        return from_unit(torch.cat(rendered)).to(images.device)

    def _render_unit(self, unit: Tensor) -> Tensor:
        """(n, 3, H, W) [0, 1] -> (n, 3, H, W) [0, 1]."""
        height, width = unit.shape[-2:]
        fixed_h, fixed_w = self.io.size
        fitted = resize(unit, fixed_h or height, fixed_w or width)
        padded = pad_to_multiple(fitted, self.io.size_multiple)
        if fixed_h or fixed_w:  # padding is for the dynamic sides only
            padded = padded[..., : fixed_h or padded.shape[-2], : fixed_w or padded.shape[-1]]
        output = self._run(padded)
        if output.shape != padded.shape:
            raise InputError(f"{self.source}: output '{self.io.output.name}' is "
                             f"{tuple(output.shape)} (as NCHW) for an input of "
                             f"{tuple(padded.shape)}; a teacher must keep the image's size")
        output = output[..., : fitted.shape[-2], : fitted.shape[-1]]
        return resize(output, height, width).clamp(0, 1)

    def _run(self, unit: Tensor) -> Tensor:
        feeds = {self.io.input.name: to_tensor(unit, self.io.input), **self.extra_inputs}
        try:
            (result,) = self.session.run([self.io.output.name], feeds)
        except Exception as err:
            raise InputError(f"{self.source}: ONNX Runtime failed on a {tuple(unit.shape)} "
                             f"image ({_first_line(err)})") from None
        return from_tensor(np.asarray(result), self.io.output, self.source)


def to_tensor(unit: Tensor, spec: ImageTensor) -> np.ndarray:
    """(n, 3, H, W) float [0, 1] -> the graph's tensor for `spec` (numpy)."""
    low, high = spec.value_range
    x = unit * (high - low) + low
    if spec.color_order == "BGR":
        x = x.flip(1)
    if spec.layout == "NHWC":
        x = x.permute(0, 2, 3, 1)
    elif spec.layout == "HWC":
        x = x[0].permute(1, 2, 0)
    if spec.dtype == "uint8":
        x = x.round().clamp(0, 255)
    return np.ascontiguousarray(x.numpy().astype(NUMPY_DTYPES[spec.dtype]))


def from_tensor(array: np.ndarray, spec: ImageTensor, source: str | Path) -> Tensor:
    """The graph's output for `spec` -> (n, 3, H, W) float32 in [0, 1] (not clipped)."""
    layout = LAYOUTS[spec.layout]
    if array.ndim != layout.rank or array.shape[layout.channel_axis] != 3:
        raise InputError(f"{source}: output '{spec.name}' has shape {list(array.shape)}, not "
                         f"the 3-channel {spec.layout} image expected")
    x = torch.from_numpy(array.astype(np.float32))
    if spec.layout == "NHWC":
        x = x.permute(0, 3, 1, 2)
    elif spec.layout == "HWC":
        x = x.permute(2, 0, 1)[None]
    if spec.color_order == "BGR":
        x = x.flip(1)
    low, high = spec.value_range
    return (x - low) / (high - low)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


class OnnxRenderedTeacher:
    """What every teacher that renders through an OnnxImageModel shares: its renders, its cache
    key (set by the subclass) and no torch features to tap."""

    model: OnnxImageModel
    _key: str

    def cache_key(self) -> str:
        return self._key

    def render(self, images: Tensor) -> Tensor:
        return self.model.render(images)

    def feature_module(self) -> nn.Module | None:
        return None
