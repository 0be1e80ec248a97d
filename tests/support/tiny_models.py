"""Tiny real ONNX artifacts made without torch: uint8 HWC RGB in and out, with our contract.

`write_invert_model` writes `255 - x` (so a test can tell a stylized frame from a raw one at a
glance); `tint` adds a per-channel offset instead, so two styles give different pictures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stylecast.core.artifact import Contract, write_onnx_metadata
from stylecast.daemon.sources.pattern import draw_card, window_offset

from support.contracts import UINT8_RGB


def tiny_model(*, height: int | None = None, width: int | None = None, style: str = "invert",
               tint: tuple[int, int, int] | None = None, size_multiple: int = 4,
               precision: str = "fp32") -> onnx.ModelProto:
    """`255 - x` (or `x + tint`, saturating) as an ONNX model with a stylecast contract."""
    dims = [height or "height", width or "width", 3]
    x = helper.make_tensor_value_info("image", TensorProto.UINT8, dims)
    y = helper.make_tensor_value_info("stylized", TensorProto.UINT8, dims)
    if tint is None:
        constant, op = np.full(3, 255.0, np.float32), "Sub"
        inputs = ["c", "xf"]
    else:
        constant, op = np.asarray(tint, np.float32), "Add"
        inputs = ["xf", "c"]
    nodes = [
        helper.make_node("Cast", ["image"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node(op, inputs, ["yf"]),
        helper.make_node("Clip", ["yf", "lo", "hi"], ["yc"]),
        helper.make_node("Cast", ["yc"], ["stylized"], to=TensorProto.UINT8),
    ]
    initializers = [numpy_helper.from_array(constant, "c"),
                    numpy_helper.from_array(np.float32(0), "lo"),
                    numpy_helper.from_array(np.float32(255), "hi")]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    contract = Contract(
        input=UINT8_RGB, output=UINT8_RGB.model_copy(update={"name": "stylized"}),
        height=height, width=width, size_multiple=size_multiple, style=style, preset="nano",
        precision=precision, weights_sha256=hashlib.sha256(constant.tobytes()).hexdigest())
    write_onnx_metadata(model, contract)
    return model


def write_tiny_model(path: str | Path, **options) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_model(**options), str(path))
    return path


def expected_stylized(frame_index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """What the daemon publishes for source frame `frame_index`: the test card, inverted."""
    canvas = np.tile(draw_card(height, width), (2, 2, 1))
    top, left = window_offset(frame_index, height, width)
    return 255 - canvas[top:top + height, left:left + width]
