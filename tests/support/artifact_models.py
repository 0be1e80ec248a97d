"""Tiny stylecast ONNX artifacts shaped like the exporter's, runnable in ONNX Runtime."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from stylecast.core.artifact import write_onnx_metadata

from support.contracts import FLOAT_NCHW, UINT8_RGB, make_contract


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def artifact_model(*, size=None, float_io=False, precision="fp32", seed=0,
                   style="mosaic") -> onnx.ModelProto:
    """A tiny stylecast artifact shaped like the exporter's: (uint8 HWC -> float NCHW) -> 1x1
    conv -> tanh -> (-> uint8 HWC), with the contract in its metadata. uint8 is cast to float
    before any other op (and back last), the order TensorRT 8.5 accepts for uint8 I/O."""
    weight = np.random.default_rng(seed).normal(0, 0.5, (3, 3, 1, 1)).astype(np.float32)
    inits = [_const("w", weight), _const("b", np.zeros(3, np.float32))]
    core = [helper.make_node("Conv", ["x", "w", "b"], ["conv"]),
            helper.make_node("Tanh", ["conv"], ["y"])]
    height, width = size if size else ("height", "width")
    if float_io:
        nodes = [helper.make_node("Identity", ["image"], ["x"]), *core,
                 helper.make_node("Identity", ["y"], ["stylized"])]
        shape, dtype = [1, 3, height, width], TensorProto.FLOAT
    else:
        inits += [_const(n, np.float32(v)) for n, v in
                  [("scale", 127.5), ("one", 1.0), ("half", 0.5), ("lo", 0.0), ("hi", 255.0)]]
        inits.append(_const("axis0", np.array([0], np.int64)))
        nodes = [
            helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["f"], ["chw"], perm=[2, 0, 1]),
            helper.make_node("Unsqueeze", ["chw", "axis0"], ["nchw"]),
            helper.make_node("Div", ["nchw", "scale"], ["d"]),
            helper.make_node("Sub", ["d", "one"], ["x"]),
            *core,
            helper.make_node("Add", ["y", "one"], ["y1"]),
            helper.make_node("Mul", ["y1", "scale"], ["y2"]),
            helper.make_node("Add", ["y2", "half"], ["y3"]),
            helper.make_node("Clip", ["y3", "lo", "hi"], ["clipped"]),
            helper.make_node("Squeeze", ["clipped", "axis0"], ["out_chw"]),
            helper.make_node("Transpose", ["out_chw"], ["hwc"], perm=[1, 2, 0]),
            helper.make_node("Cast", ["hwc"], ["stylized"], to=TensorProto.UINT8),
        ]
        shape, dtype = [height, width, 3], TensorProto.UINT8
    graph = helper.make_graph(nodes, "artifact",
                              [helper.make_tensor_value_info("image", dtype, shape)],
                              [helper.make_tensor_value_info("stylized", dtype, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = make_contract(FLOAT_NCHW if float_io else UINT8_RGB,
                             height=size[0] if size else None, width=size[1] if size else None,
                             style=style, precision=precision,
                             weights_sha256=hashlib.sha256(weight.tobytes()).hexdigest())
    write_onnx_metadata(model, contract)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_artifact(path: Path, **kwargs) -> Path:
    onnx.save(artifact_model(**kwargs), path)
    return path
