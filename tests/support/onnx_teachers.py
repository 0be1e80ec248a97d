"""Tiny image-to-image ONNX models in any layout, dtype and value range, and the numpy reference
of what each does, for the ONNX teacher tests (built here with onnx.helper, nothing downloaded).

Every model rotates the color channels (R, G, B) <- (G, B, R), so a wrong layout or color order
shows, then ends in one op: "invert" (low + high - x), "tanh", "sigmoid" (of 4 (x - 0.5)) or
"relu". uint8 models cast to float first and back last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8,
                 "int64": TensorProto.INT64}
CHANNEL_AXIS = {"NCHW": 1, "NHWC": 3, "HWC": 2}
ROTATION = [1, 2, 0]  # output channel c is input channel ROTATION[c]


def image_shape(layout: str, size=None, batch="batch") -> list:
    height, width = size if size else ("height", "width")
    return {"NCHW": [batch, 3, height, width], "NHWC": [batch, height, width, 3],
            "HWC": [height, width, 3]}[layout]


def image_model(layout="NCHW", dtype="float32", value_range=(0.0, 1.0), last="invert",
                size=None, batch="batch", shape=None, extra_inputs=(),
                output_shape=None) -> onnx.ModelProto:
    low, high = value_range
    axis = CHANNEL_AXIS.get(layout, 1)
    shape = shape or image_shape(layout, size, batch)
    inits = [numpy_helper.from_array(np.array(ROTATION, np.int64), "rotation"),
             numpy_helper.from_array(np.float32(low + high), "low_plus_high"),
             numpy_helper.from_array(np.float32(0.5), "half"),
             numpy_helper.from_array(np.float32(4.0), "four")]
    nodes = [helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT)
             if dtype == "uint8" else helper.make_node("Identity", ["image"], ["x"]),
             helper.make_node("Gather", ["x", "rotation"], ["rotated"], axis=axis)]
    if last == "invert":
        nodes.append(helper.make_node("Sub", ["low_plus_high", "rotated"], ["y"]))
    elif last == "sigmoid":
        nodes += [helper.make_node("Sub", ["rotated", "half"], ["centered"]),
                  helper.make_node("Mul", ["centered", "four"], ["steep"]),
                  helper.make_node("Sigmoid", ["steep"], ["y"])]
    else:
        nodes.append(helper.make_node(last.capitalize(), ["rotated"], ["y"]))
    nodes.append(helper.make_node("Cast", ["y"], ["stylized"], to=TensorProto.UINT8)
                 if dtype == "uint8" else helper.make_node("Identity", ["y"], ["stylized"]))
    element = ELEMENT_TYPES[dtype]
    inputs = [helper.make_tensor_value_info("image", element, shape)]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])
               for name in extra_inputs]
    outputs = [helper.make_tensor_value_info("stylized", element, output_shape or shape)]
    graph = helper.make_graph(nodes, "tiny_teacher", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save_image_model(path: Path, **kwargs) -> Path:
    onnx.save(image_model(**kwargs), str(path))
    return path


def reference(images: np.ndarray, dtype="float32", value_range=(0.0, 1.0), last="invert",
              color_order="RGB") -> np.ndarray:
    """What a teacher made of `image_model(...)` renders: (N, 3, H, W) [-1, 1] -> the same,
    written out in numpy from the conventions alone."""
    low, high = value_range
    x = (images.astype(np.float64) + 1) / 2 * (high - low) + low
    if dtype == "uint8":
        x = np.clip(np.round(x), 0, 255)
    if color_order == "BGR":
        x = x[:, ::-1]
    x = x[:, ROTATION]
    if last == "invert":
        y = low + high - x
    elif last == "tanh":
        y = np.tanh(x)
    elif last == "sigmoid":
        y = 1 / (1 + np.exp(-4 * (x - 0.5)))
    else:
        y = np.maximum(x, 0)
    if dtype == "uint8":
        y = np.clip(np.round(y), 0, 255)
    if color_order == "BGR":
        y = y[:, ::-1]
    unit = np.clip((y - low) / (high - low), 0, 1)
    return (unit * 2 - 1).astype(np.float32)
