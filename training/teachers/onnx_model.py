"""`--teacher FILE.onnx`: any image-to-image ONNX model, run by ONNX Runtime on the CPU.

How the model holds an image is found in this order, each later source filling only what the
earlier ones left open:

1. the `[teacher]` options a user gives (layout, color_order, value_range, output_value_range,
   size_multiple) win over what is found; `dtype` must agree with the graph's element type
   and only settles one the graph leaves undefined;
2. a stylecast artifact's own contract (its `stylecast.*` metadata, core/artifact.py), checked
   against its graph;
3. the graph: the one image input (its element type gives the dtype; its rank and where its
   3-channel axis sits give HWC, NCHW or NHWC; static height and width make a fixed size), the
   output of the same rank (the first, if several), and for a float model the op that ends the
   graph: Tanh means [-1, 1] in and out (CycleGAN and pix2pix exports), Sigmoid [0, 1]. uint8
   is [0, 255]; the color order is RGB.

Whatever is still unknown is one line naming the file, the input and the option that settles it
(exit 78), as is an input that is no image: two inputs, rank 2, an int64 tensor, 1 channel.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from stylecast.core.artifact import VERSION_KEY, Contract, check_graph_io, load_onnx_model
from stylecast.core.digests import file_sha256
from stylecast.core.errors import InputError
from stylecast.core.layouts import LAYOUTS
from stylecast.training.teachers.keys import teacher_key
from stylecast.training.teachers.onnx_image import (
    ImageIO,
    ImageTensor,
    OnnxImageModel,
    OnnxRenderedTeacher,
)
from stylecast.training.teachers.options import AUTO, TeacherOptions

KIND = "onnx"
SUFFIX = ".onnx"
DEFAULT_SIZE_MULTIPLE = 8  # three stride-2 stages: enough for most image-to-image networks
RENDER_VERSION = 1  # bump when the way renders are made changes (invalidates cached renders)
ELEMENT_TYPES = {1: "float32", 10: "float16", 2: "uint8"}  # onnx.TensorProto data types
RANGE_OF_LAST_OP = {"Tanh": (-1.0, 1.0), "Sigmoid": (0.0, 1.0)}
RANGE_HINT = "give it with --set teacher.value_range=0,1 (or -1,1 or 0,255)"


def claims(source: str) -> bool:
    return source.lower().endswith(SUFFIX)


class OnnxTeacher(OnnxRenderedTeacher):
    style: str | None = None

    def __init__(self, model: OnnxImageModel, path: Path, weights_sha256: str,
                 style: str | None = None) -> None:
        self.model = model
        self.style = style
        self.description = f"ONNX model {path.name} ({model.io.describe()})"
        self._key = teacher_key(KIND, weights=weights_sha256, io=model.io.as_dict(),
                                version=RENDER_VERSION)


def load(source: str, options: TeacherOptions) -> OnnxTeacher:
    path = Path(source)
    model = load_onnx_model(path)  # ArtifactError (exit 78) for a missing or unreadable file
    contract = _contract(model, path)
    io = read_image_io(model.graph, path, options, contract)
    return OnnxTeacher(OnnxImageModel(path, io, path, options.threads), path, file_sha256(path),
                       style=contract.style if contract else None)


def read_image_io(graph: Any, path: Path, options: TeacherOptions,
                  contract: Contract | None = None) -> ImageIO:
    """How the graph of `path` takes and gives an image (see the module docstring)."""
    value = _image_input(graph, path)
    dims = _dims(value)
    layout = _input_layout(value.name, dims, path, options, contract)
    output_value = _image_output(graph, path, contract, LAYOUTS[layout].rank)
    output_layout = (options.layout if options.layout != AUTO else
                     contract.output.layout if contract else
                     _guess_layout(_dims(output_value)) or layout)
    input_spec = ImageTensor(value.name, layout, _dtype(value, path, "input", options.dtype),
                             (0.0, 1.0), _color(options, contract and contract.input))
    output_spec = ImageTensor(output_value.name, output_layout,
                              _dtype(output_value, path, "output", options.dtype), (0.0, 1.0),
                              _color(options, contract and contract.output))
    input_range, output_range = _ranges(graph, path, options, contract, input_spec, output_spec)
    return ImageIO(
        input=replace(input_spec, value_range=input_range),
        output=replace(output_spec, value_range=output_range),
        size=_fixed_size(dims, LAYOUTS[layout]),
        size_multiple=(options.size_multiple or (contract.size_multiple if contract else 0)
                       or DEFAULT_SIZE_MULTIPLE),
        batch=_batch(dims),
    )


def _contract(model: Any, path: Path) -> Contract | None:
    props = {p.key: p.value for p in model.metadata_props}
    if VERSION_KEY not in props:
        return None
    contract = Contract.from_metadata(props, source=str(path))
    check_graph_io(model, contract, str(path))
    return contract


def _image_input(graph: Any, path: Path) -> Any:
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(value.name) for value in inputs) or "none"
        raise InputError(f"{path}: inputs {names}: an ONNX teacher takes exactly one input, "
                         "the image")
    return inputs[0]


def _dims(value: Any) -> list[int | str] | None:
    """Static sizes as ints, symbolic ones as their names ('?' unnamed); None: rank unknown."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?")
            for dim in tensor.shape.dim]


def _guess_layout(dims: list[int | str] | None) -> str | None:
    """The layout a shape shows: rank 3 is HWC; rank 4 NCHW or NHWC by where a 3 sits."""
    if dims is None:
        return None
    if len(dims) == 3:
        return "HWC"
    if len(dims) == 4:
        nchw, nhwc = dims[1] == 3, dims[3] == 3
        if nchw != nhwc:
            return "NCHW" if nchw else "NHWC"
    return None


def _input_layout(name: str, dims: list[int | str] | None, path: Path,
                  options: TeacherOptions, contract: Contract | None) -> str:
    if dims is not None and len(dims) not in (3, 4):
        raise InputError(f"{path}: input '{name}' has rank {len(dims)} {dims}; an image input "
                         "has rank 3 (HWC) or 4 (NCHW, NHWC)")
    layout = (options.layout if options.layout != AUTO else
              contract.input.layout if contract else _guess_layout(dims))
    if layout is None:
        shown = dims if dims is not None else "of unknown shape"
        raise InputError(f"{path}: input '{name}' {shown}: cannot tell its layout; give it with "
                         "--set teacher.layout=NCHW (or NHWC or HWC)")
    spec = LAYOUTS[layout]
    if dims is not None and len(dims) != spec.rank:
        raise InputError(f"{path}: input '{name}' has rank {len(dims)} {dims}, not the rank "
                         f"{spec.rank} of layout {layout}")
    channels = dims[spec.channel_axis] if dims is not None else 3
    if isinstance(channels, int) and channels != 3:
        raise InputError(f"{path}: input '{name}' {dims} has {channels} channel(s) where "
                         f"layout {layout} puts them; a teacher takes RGB images (3)")
    return layout


def _image_output(graph: Any, path: Path, contract: Contract | None, rank: int) -> Any:
    outputs = list(graph.output)
    if contract:
        return next(value for value in outputs if value.name == contract.output.name)
    for value in outputs:
        dims = _dims(value)
        if dims is None or len(dims) == rank:
            return value
    shapes = ", ".join(f"'{value.name}' {_dims(value)}" for value in outputs)
    raise InputError(f"{path}: no output of rank {rank} like the image input (outputs {shapes})")


def _dtype(value: Any, path: Path, kind: str, given: str) -> str:
    """The graph's element type, or the option where the graph leaves it undefined."""
    element = value.type.tensor_type.elem_type
    if element == 0 and given != AUTO:
        return given
    dtype = ELEMENT_TYPES.get(element)
    if dtype is None:
        import onnx

        found = onnx.TensorProto.DataType.Name(element).lower()
        raise InputError(f"{path}: {kind} '{value.name}' is {found}; an ONNX teacher takes and "
                         "gives float32, float16 or uint8 images")
    if kind == "input" and given not in (AUTO, dtype):
        raise InputError(f"{path}: input '{value.name}' is {dtype}, but teacher.dtype = "
                         f"'{given}'")
    return dtype


def _color(options: TeacherOptions, spec: Any) -> str:
    if options.color_order != AUTO:
        return options.color_order
    return spec.color_order if spec else "RGB"


def _ranges(graph: Any, path: Path, options: TeacherOptions, contract: Contract | None,
            input_spec: ImageTensor, output_spec: ImageTensor,
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The input's and the output's value ranges."""
    last_op = _last_op(graph, output_spec.name)
    guessed = RANGE_OF_LAST_OP.get(last_op or "")
    input_range = (options.value_range
                   or (contract.input.value_range if contract else None)
                   or ((0.0, 255.0) if input_spec.dtype == "uint8" else guessed))
    if input_range is None:
        ends = f"ends in {last_op}" if last_op else "has no final op"
        raise InputError(f"{path}: input '{input_spec.name}' is {input_spec.dtype} and the graph "
                         f"{ends}: cannot tell the value range; {RANGE_HINT}")
    output_range = (options.output_value_range
                    or (contract.output.value_range if contract else None)
                    or ((0.0, 255.0) if output_spec.dtype == "uint8" else guessed)
                    or input_range)
    return tuple(input_range), tuple(output_range)


def _last_op(graph: Any, output_name: str) -> str | None:
    """The op that makes `output_name`, looking through Identity nodes."""
    makers = {name: node for node in graph.node for name in node.output}
    node = makers.get(output_name)
    while node is not None and node.op_type == "Identity":
        node = makers.get(node.input[0])
    return node.op_type if node is not None else None


def _batch(dims: list[int | str] | None) -> int | None:
    """Images per run: all of a batch where a rank-4 input has a symbolic batch axis, else 1."""
    return None if dims is not None and len(dims) == 4 and isinstance(dims[0], str) else 1


def _fixed_size(dims: list[int | str] | None, layout: Any) -> tuple[int | None, int | None]:
    if dims is None:
        return None, None
    height, width = dims[layout.height_axis], dims[layout.width_axis]
    return (height if isinstance(height, int) and height > 0 else None,
            width if isinstance(width, int) and width > 0 else None)
