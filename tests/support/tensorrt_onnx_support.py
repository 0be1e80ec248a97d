"""What TensorRT's ONNX parser accepts, per TensorRT version, and a checker for exported graphs.

TensorRT cannot run on the machines that run our tests, so tests/export/test_tensorrt_ops.py checks
every exported graph against the facts below instead. They were read from these sources (the
`docs/operators.md` support matrix is the primary one; parser source and TensorRT's own API
headers fill in what the matrix leaves out, and each fact says where it comes from):

  [85]    onnx/onnx-tensorrt@8.5-GA:docs/operators.md ("TensorRT 8.5 supports operators up to
          Opset 17"). The rows used here are identical at release/8.5-GA and at 7583da4c
          ("Integrate 8.5.2.2 changes"), the parser that NVIDIA/TensorRT@8.5.2 pins (JetPack 5.1).
  [85src] onnx/onnx-tensorrt@7583da4c:builtin_op_importers.cpp, ModelImporter.cpp and
          onnx2trt_utils.cpp (the TensorRT 8.5.2 parser source).
  [85api] NVIDIA/TensorRT@8.5.2:include/NvInferRuntimeCommon.h and include/NvInfer.h.
  [103]   onnx/onnx-tensorrt@10.1-GA:docs/operators.md ("TensorRT 10.0 supports operators in
          the inclusive range of opset 9 to opset 20"). No release/10.3-GA branch was in the
          stored snapshot of the repository; NVIDIA/TensorRT@v10.3.0 pins parser commit
          62bdde2a, which lies between 10.1-GA and the TensorRT 10.15 version of the same
          file, and every row used here reads the same in 10.1-GA and 10.15.
  [103src] onnx/onnx-tensorrt@10.1-GA:onnxOpImporters.cpp and ModelImporter.cpp.
  [103api] NVIDIA/TensorRT@v10.3.0:include/NvInferRuntimeBase.h and include/NvInfer.h.
  [#3985] NVIDIA/TensorRT issue 3985 (TensorRT 10.1: "UINT8-to-FLOAT cast after transpose
          breaks the graph"); NVIDIA's kevinch-nv: "All UINT8 inputs must directly feed into
          a cast layer in TensorRT. No other layers support UINT8 inputs, even just
          data-movement ops like reshape / transpose."
  [#3026] NVIDIA/TensorRT issue 3026; NVIDIA's zerollzeng: UINT8 casting is supported "since
          TRT 8.5".

UINT8 network I/O, the fact our default export depends on:
  * TensorRT 8.5 added DataType::kUINT8 (it is absent from the 8.4.3 headers). [85api] says:
    "Use the IdentityLayer to convert kUINT8 network-level inputs to {kFLOAT, kHALF} prior to
    use with other TensorRT layers, or to convert intermediate output before kUINT8
    network-level outputs from {kFLOAT, kHALF} to kUINT8. kUINT8 conversions are only
    supported for {kFLOAT, kHALF}". The 8.5.2 parser [85src] reads UINT8 graph inputs and
    outputs, and its Cast importer allows UINT8 <-> FLOAT/FLOAT16 only.
  * The 8.5 matrix [85] does NOT list UINT8 anywhere: its data types are "DOUBLE, FLOAT32,
    FLOAT16, INT8, and BOOL" and its Cast row is "FP32, FP16, INT32, INT8, BOOL". The table
    below follows the parser source and API header for Cast, and says so.
  * The 10.x matrix [103] lists UINT8 for Cast/CastLike only and notes "UINT8 is only
    supported as network input or output tensor types"; since 8.6-EA the parser rejects a
    node output of type UINT8 that is not a graph output ("TensorRT does not support UINT8
    types for intermediate tensors!", [103src] ModelImporter.cpp).
  * So in every version: a UINT8 graph input may only feed Cast to FLOAT/FLOAT16 directly,
    and a UINT8 graph output must come straight out of a Cast from FLOAT/FLOAT16. A
    Transpose, Unsqueeze, Squeeze or Reshape on a UINT8 tensor is unsupported ([#3985]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

VERSIONS = ("8.5", "10.3")

# ONNX element types, as the support matrix names them.
TYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "DOUBLE", TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8",
    TensorProto.INT16: "INT16", TensorProto.UINT16: "UINT16", TensorProto.INT32: "INT32",
    TensorProto.UINT32: "UINT32", TensorProto.INT64: "INT64", TensorProto.UINT64: "UINT64",
    TensorProto.BOOL: "BOOL", TensorProto.STRING: "STRING",
}
for _name in ("FLOAT8E4M3FN", "INT4"):  # only in newer onnx releases
    if hasattr(TensorProto, _name):
        TYPE_NAMES[getattr(TensorProto, _name)] = "FP8" if _name.startswith("FLOAT8") else "INT4"


@dataclass(frozen=True)
class VersionFacts:
    """What one TensorRT version documents for ONNX as a whole."""

    opset_min: int
    opset_max: int
    # Types the parser narrows instead of refusing: [85] "TensorRT will attempt to cast down
    # INT64 to INT32 and DOUBLE down to FLOAT"; [103] only DOUBLE -> FLOAT.
    narrowed: dict[str, str]
    # Targets of Cast: the Cast row's types, plus what narrows.
    cast_to: frozenset[str]
    source: str


VERSION_FACTS: dict[str, VersionFacts] = {
    "8.5": VersionFacts(
        opset_min=1, opset_max=17, narrowed={"INT64": "INT32", "DOUBLE": "FP32"},
        # [85] Cast row: FP32, FP16, INT32, INT8, BOOL; UINT8 from [85src] Cast importer and
        # [85api] (kUINT8 <-> kFLOAT/kHALF only); INT64 -> INT32, DOUBLE -> FLOAT narrowed.
        cast_to=frozenset({"FP32", "FP16", "INT32", "INT8", "BOOL", "UINT8", "INT64", "DOUBLE"}),
        source="onnx/onnx-tensorrt@8.5-GA:docs/operators.md",
    ),
    "10.3": VersionFacts(
        opset_min=9, opset_max=20, narrowed={"DOUBLE": "FP32"},
        # [103] Cast row: FP32, FP16, BF16, INT32, INT64, UINT8, BOOL. INT8 is a "Quantized
        # Type", reachable "only through quantization" (Q/DQ), not by Cast.
        cast_to=frozenset({"FP32", "FP16", "BF16", "INT32", "INT64", "UINT8", "BOOL", "DOUBLE"}),
        source="onnx/onnx-tensorrt@10.1-GA:docs/operators.md (10.3 pins 62bdde2a)",
    ),
}


@dataclass(frozen=True)
class OpFacts:
    """One row of the support matrix: supported?, input types per version, the restrictions."""

    supported: dict[str, bool]
    types: dict[str, frozenset[str]]
    limits: str = ""


def _op(types85: str, types103: str, limits: str = "") -> OpFacts:
    def parse(text: str) -> frozenset[str]:
        return frozenset(t.strip() for t in text.split(",") if t.strip())

    return OpFacts(supported={"8.5": bool(types85), "10.3": bool(types103)},
                   types={"8.5": parse(types85), "10.3": parse(types103)}, limits=limits)


_NO = ""  # "N" in the Supported column

# Types are the "Supported Types" column of [85] and [103]. INT8 in the 8.5 column of a compute
# op means TensorRT's own INT8 precision; in an explicitly quantized (Q/DQ) graph those ops see
# FLOAT/FLOAT16 tensors, and only Q/DQ touch INT8 tensors.
OPERATORS: dict[str, OpFacts] = {
    # [85] Conv | Y | FP32, FP16, INT8 (no restriction listed); [103] Conv | Y | FP32, FP16, BF16.
    # [85src] Conv importer: 1D (unsqueezed to 2D), 2D or 3D kernels; `group` -> setNbGroups, so
    # grouped and depthwise convs are fine; weights from a tensor (e.g. DequantizeLinear) go
    # through convMultiInput.
    "Conv": _op("FP32, FP16, INT8", "FP32, FP16, BF16",
                "1D/2D/3D kernels; any `group` (depthwise ok)"),
    # [85]/[103] ConvTranspose | Y; not used by our generators (resize+conv upsampling).
    "ConvTranspose": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    # [85] Relu | Y | FP32, FP16, INT8; [103] Relu | Y | FP32, FP16, BF16, INT32, INT64.
    "Relu": _op("FP32, FP16, INT8", "FP32, FP16, BF16, INT32, INT64"),
    # [85] Add/Sub/Mul/Div | Y | FP32, FP16, INT32; [103] ... | FP32, FP16, BF16, INT32, INT64.
    "Add": _op("FP32, FP16, INT32", "FP32, FP16, BF16, INT32, INT64"),
    "Sub": _op("FP32, FP16, INT32", "FP32, FP16, BF16, INT32, INT64"),
    "Mul": _op("FP32, FP16, INT32", "FP32, FP16, BF16, INT32, INT64"),
    "Div": _op("FP32, FP16, INT32", "FP32, FP16, BF16, INT32, INT64"),
    # [85] Tanh | Y | FP32, FP16, INT8; [103] Tanh | Y | FP32, FP16, BF16.
    "Tanh": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    # [85] Resize | Y | FP32, FP16 | "Supported resize transformation modes: `half_pixel`,
    # `pytorch_half_pixel`, `tf_half_pixel_for_nn`, `asymmetric`, and `align_corners`.
    # Supported resize modes: `nearest`, `linear`. Supported nearest modes: `floor`, `ceil`,
    # `round_prefer_floor`, `round_prefer_ceil`". [103] adds BF16 and: "Supported aspect ratio
    # policy: `stretch`. When `scales` is a tensor input, `axes` must be an iota vector of
    # length rank(input). Antialiasing is not supported." Parser source [85src]/[103src]:
    # `scales` may be an initializer or a tensor, `sizes` too; linear may only scale the 3
    # innermost dims ("only supports linear resizing on the outermost 3 dimensions", i.e. the
    # leading scales must be 1); 8.5 only: tf_half_pixel_for_nn needs nearest_mode
    # round_prefer_floor. (`cubic` is in the parser source but not in either matrix: treated
    # as unsupported here.)
    "Resize": _op("FP32, FP16", "FP32, FP16, BF16", "see RESIZE_* below"),
    # [85]/[103] Upsample | Y (deprecated op; exporters emit Resize).
    "Upsample": _op("FP32, FP16", "FP32, FP16, BF16"),
    # [85] Cast | Y | FP32, FP16, INT32, INT8, BOOL -- no UINT8 in the 8.5 matrix; UINT8 added
    # from [85src] (Cast importer: "UINT8 type casting is only supported from FP types") and
    # [85api], see the module docstring. [103] Cast | Y | FP32, FP16, BF16, INT32, INT64, UINT8,
    # BOOL. Both: UINT8 <-> FLOAT/FLOAT16 only; UINT8 only at graph inputs/outputs.
    "Cast": _op("FP32, FP16, INT32, INT8, BOOL, UINT8",
                "FP32, FP16, BF16, INT32, INT64, UINT8, BOOL",
                "UINT8 only from/to FP32/FP16 at a graph input/output; targets: VERSION_FACTS"),
    # [85] Transpose | Y | FP32, FP16, INT32, INT8, BOOL; [103] FP32, FP16, BF16, INT32, INT64,
    # BOOL. No UINT8 in either ([#3985]: transpose of a UINT8 input breaks the network).
    "Transpose": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL"),
    # [85]/[103] Unsqueeze | Y | ... | "`axes` must be a constant tensor". No UINT8.
    "Unsqueeze": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL",
                     "`axes` must be a constant tensor"),
    # [85]/[103] Squeeze | Y | ... | "`axes` must be an initializer". No UINT8.
    "Squeeze": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL",
                   "`axes` must be an initializer"),
    # [85] Reshape | Y | FP32, FP16, INT32, INT8, BOOL; [103] FP32, FP16, BF16, INT32, INT64, BOOL.
    "Reshape": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL"),
    # [85] Clip | Y | FP32, FP16, INT8; [103] Clip | Y | FP32, FP16, BF16; no restriction listed.
    # [85src]/[103src]: initializer min/max use the fast activation path; tensor min/max fall
    # back to elementwise max/min, so constants are preferred but not required.
    "Clip": _op("FP32, FP16, INT8", "FP32, FP16, BF16",
                "min/max initializers preferred (activation layer); tensors fall back to max/min"),
    # [85] QuantizeLinear | Y | FP32, FP16 | "`y_zero_point` must be 0"; [103] adds BF16.
    # [85api]/[103api] IQuantizeLayer: zero point INT8 (10.x: or FP8/INT4), all zero; "scale
    # coefficients must have positive values"; scale and zero point "must be a build-time
    # constant" (Constant -> Quantize or Constant -> Cast -> Quantize); "Per-channel
    # quantization is supported only for weight inputs. Thus, Activations cannot be quantized
    # per-channel", KCRS weights with K (axis 0) as the example axis. [85src]: Q/DQ need all 3
    # inputs ("This version of TensorRT requires 3 inputs"), a UINT8 zero point is refused.
    # [103src]: 2 inputs are enough; UINT8 zero point refused for Q ("TensorRT doesn't support
    # QuantizeLinear/DequantizeLinear with UINT8 zero_point").
    "QuantizeLinear": _op("FP32, FP16", "FP32, FP16, BF16", "see check_graph (Q/DQ rules)"),
    # [85] DequantizeLinear | Y | INT8 | "`x_zero_point` must be zero"; [103] INT8, FP8, INT4.
    # So an INT32 bias behind a DequantizeLinear (ONNX Runtime's default QuantizeBias=True) is
    # not importable; onnx/onnx-tensorrt#850: "Dequantize nodes should have floating point
    # input types (activation types in TRT)" ... i.e. INT8 data.
    "DequantizeLinear": _op("INT8", "INT8, FP8, INT4", "see check_graph (Q/DQ rules)"),
    # [85] Identity | Y | FP32, FP16, INT32, INT8, BOOL; [103] FP32, FP16, BF16, INT32, INT64, BOOL.
    "Identity": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL"),
    # [85] Constant | Y | FP32, FP16, INT32, INT8, BOOL; [103] FP32, FP16, BF16, INT32, INT64,
    # BOOL | "`sparse_value`, `value_string`, and `value_strings` attributes are unsupported."
    # Types are those of the constant's value, checked on the output.
    "Constant": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL",
                    "no sparse_value / value_string / value_strings"),
    # [85]/[103] BatchNormalization | Y | FP32, FP16 (+BF16). Our export folds it into Conv.
    "BatchNormalization": _op("FP32, FP16", "FP32, FP16, BF16"),
    # [85] InstanceNormalization | Y | FP32, FP16 | "Scales `scale` and biases `B` must be
    # initializers. Input rank must be >=3 & <=5"; [103] no restriction. We avoid it
    # anyway (broken in FP16 TensorRT, does not quantize).
    "InstanceNormalization": _op("FP32, FP16", "FP32, FP16, BF16",
                                 "8.5: scale and B initializers, rank 3..5"),
    # Ops a future generator might use, [85] vs [103] rows:
    "Concat": _op("FP32, FP16, INT32, INT8, BOOL", "FP32, FP16, BF16, INT32, INT64, BOOL"),
    "Pad": _op("FP32, FP16, INT8, INT32", "FP32, FP16, BF16, INT32, INT64",
               "10.x: `axes` must be an initializer"),
    "Sigmoid": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    "HardSigmoid": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    # HardSwish: N at release/8.5-GA (8.5.1), Y from the 8.5.2 parser (7583da4c) on.
    "HardSwish": _op("FP32, FP16, INT8", "FP32, FP16, BF16", "needs TensorRT >= 8.5.2"),
    "LeakyRelu": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    "Round": _op("FP32, FP16, INT8", "FP32, FP16, BF16"),
    "Floor": _op("FP32, FP16", "FP32, FP16, BF16"),
    # N in both matrices: the integer-op ("QOperator") quantization formats. A quantizer that
    # writes these instead of Q/DQ pairs produces a graph TensorRT cannot parse.
    "ConvInteger": _op(_NO, _NO),
    "QLinearConv": _op(_NO, _NO),
    "MatMulInteger": _op(_NO, _NO),
    "DynamicQuantizeLinear": _op(_NO, _NO),
}

# Resize attribute limits, from the Resize rows of [85]/[103] (see OPERATORS["Resize"]).
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"})
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
# ONNX defaults, which the parser also uses when an attribute is absent.
RESIZE_DEFAULTS = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                   "nearest_mode": "round_prefer_floor"}

# Ops in which every input is a data input of the op's type (the rest: input 0 only).
_ALL_INPUTS_TYPED = frozenset({"Add", "Sub", "Mul", "Div", "Concat"})
_QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})
# Ops that keep values inside a Clip's range (walked through to find a Clip): data movement,
# retyping, and a Q/DQ pair (symmetric, calibrated on that range, so it stays inside it).
_RANGE_PRESERVING = frozenset({"Cast", "Identity", "Transpose", "Squeeze", "Unsqueeze", "Reshape",
                               "QuantizeLinear", "DequantizeLinear"})


def normalize_version(version: str) -> str:
    """'8.5', '8.5.2' or '8.5.2.2' -> '8.5'; a version with no facts here is a ValueError."""
    major_minor = ".".join(str(version).split(".")[:2])
    if major_minor not in VERSION_FACTS:
        raise ValueError(f"no TensorRT support facts for version {version!r} "
                         f"(have {', '.join(VERSIONS)})")
    return major_minor


def check_graph(model: onnx.ModelProto, version: str = "8.5") -> list[str]:
    """Everything in `model` that TensorRT `version` does not document as supported.

    Returns human-readable problems, each naming the node and the limit it breaks; an empty
    list means every node is inside the documented limits.
    """
    return _Checker(model, normalize_version(version)).run()


class _Checker:
    def __init__(self, model: onnx.ModelProto, version: str) -> None:
        self.version = version
        self.facts = VERSION_FACTS[version]
        self.model = model
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # a graph shape inference cannot follow: types from what is declared
            inferred = model
        self.graph = inferred.graph
        self.problems: list[str] = []
        self.types: dict[str, int] = {}
        self.ranks: dict[str, int] = {}
        for value in [*self.graph.input, *self.graph.output, *self.graph.value_info]:
            tensor_type = value.type.tensor_type
            if tensor_type.elem_type:
                self.types[value.name] = tensor_type.elem_type
            if tensor_type.HasField("shape"):
                self.ranks[value.name] = len(tensor_type.shape.dim)
        self.constants: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            self.constants[init.name] = numpy_helper.to_array(init)
            self.types[init.name] = init.data_type
            self.ranks[init.name] = len(init.dims)
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in self.graph.node:
            for output in node.output:
                self.producer[output] = node
            for index, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, index))
        self._fold_constants()
        for node in self.graph.node:
            # ONNX's QuantizeLinear without a zero point (or output_dtype) outputs UINT8; the
            # TensorRT parser makes it INT8 ("ONNX default is UINT8, TRT will default to INT8",
            # [103src]). check_qdq reports the mismatch once; type it as TensorRT sees it.
            if (node.op_type == "QuantizeLinear" and (len(node.input) < 3 or not node.input[2])
                    and _attr(node, "output_dtype") is None):
                self.types[node.output[0]] = TensorProto.INT8
        self.graph_inputs = {v.name for v in self.graph.input} - set(self.constants)
        self.graph_outputs = {v.name for v in self.graph.output}

    # ------------------------------------------------------------------ helpers

    def _fold_constants(self) -> None:
        """Constant nodes, and Cast/Identity of constants (what TensorRT folds), are constants."""
        for node in self.graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                array = _constant_value(node)
                if array is not None:
                    self.constants[node.output[0]] = array
                    self.ranks[node.output[0]] = array.ndim
            elif node.op_type in ("Cast", "Identity") and node.input[0] in self.constants:
                array = self.constants[node.input[0]]
                if node.op_type == "Cast":
                    try:
                        dtype = onnx.helper.tensor_dtype_to_np_dtype(_attr(node, "to"))
                        array = array.astype(dtype)
                    except (KeyError, TypeError, ValueError):
                        continue
                self.constants[node.output[0]] = array

    def report(self, node: onnx.NodeProto, message: str) -> None:
        name = node.name or (node.output[0] if node.output else "?")
        self.problems.append(f"TensorRT {self.version}: {node.op_type} node {name!r}: {message}")

    def type_name(self, tensor: str) -> str | None:
        elem = self.types.get(tensor)
        return None if elem is None else TYPE_NAMES.get(elem, f"type#{elem}")

    def documented(self, type_name: str) -> str:
        return self.facts.narrowed.get(type_name, type_name)

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.constants

    # ------------------------------------------------------------------ checks

    def run(self) -> list[str]:
        self.check_opset()
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx"):
                self.report(node, f"operator domain {node.domain!r} is not the ONNX domain; "
                                  "TensorRT would need a plugin for it")
                continue
            facts = OPERATORS.get(node.op_type)
            if facts is None:
                self.report(node, "operator not vetted in tests/support/tensorrt_onnx_support.py; "
                                  f"add its row from {self.facts.source} before exporting it")
                continue
            if not facts.supported[self.version]:
                self.report(node, f"not supported ({self.facts.source}: Supported = N)")
                continue
            self.check_types(node, facts)
            check = getattr(self, f"check_{node.op_type}", None)
            if check is not None:
                check(node)
            if node.op_type in _QDQ:
                self.check_qdq(node)
        self.check_uint8_io()
        return self.problems

    def check_opset(self) -> None:
        for opset in self.model.opset_import:
            if opset.domain in ("", "ai.onnx") and not (
                    self.facts.opset_min <= opset.version <= self.facts.opset_max):
                self.problems.append(
                    f"TensorRT {self.version}: ONNX opset {opset.version} is outside the "
                    f"documented range {self.facts.opset_min}..{self.facts.opset_max} "
                    f"({self.facts.source})")

    def check_types(self, node: onnx.NodeProto, facts: OpFacts) -> None:
        allowed = facts.types[self.version]
        if node.op_type == "Constant":
            tensors = list(node.output)
        elif node.op_type in _ALL_INPUTS_TYPED:
            tensors = [name for name in node.input if name]
        else:
            tensors = node.input[:1]
        for tensor in tensors:
            type_name = self.type_name(tensor)
            if type_name is not None and self.documented(type_name) not in allowed:
                documented = ", ".join(sorted(allowed))
                self.report(node, f"{type_name} tensor {tensor!r} is not a supported type "
                                  f"(documented: {documented}; {self.facts.source})")

    def check_Cast(self, node: onnx.NodeProto) -> None:
        to = TYPE_NAMES.get(_attr(node, "to"), f"type#{_attr(node, 'to')}")
        if to not in self.facts.cast_to:
            self.report(node, f"Cast to {to} is not supported (Cast targets: "
                              f"{', '.join(sorted(self.facts.cast_to))}; {self.facts.source})")
        source = self.type_name(node.input[0])
        if "UINT8" in (to, source) and source is not None:
            other = source if to == "UINT8" else to
            if other not in ("FP32", "FP16"):
                self.report(node, f"Cast {source} -> {to}: UINT8 conversions are only supported "
                                  "to/from FLOAT and FLOAT16 (DataType::kUINT8 in "
                                  "NvInferRuntimeCommon.h / NvInferRuntimeBase.h)")
        if to == "UINT8" and not self.bounded_for_uint8(node.input[0]):
            self.report(node, "Cast to UINT8 of a value not clipped to [0, 255]: TensorRT "
                              "truncates and \"has undefined behavior for floating point values "
                              "outside the range [0.0F, 256.0F) after truncation\" "
                              "(DataType::kUINT8)")

    def bounded_for_uint8(self, tensor: str) -> bool:
        node = self.producer.get(tensor)
        while node is not None and node.op_type in _RANGE_PRESERVING:
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != "Clip":
            return False
        bounds = [self.constants.get(name) if name else None for name in node.input[1:3]]
        if len(bounds) < 2 or bounds[0] is None or bounds[1] is None:
            return False
        return float(np.min(bounds[0])) >= 0.0 and float(np.max(bounds[1])) < 256.0

    def check_uint8_io(self) -> None:
        """UINT8 only as a network input feeding Cast directly, or a network output of a Cast."""
        source = "(DataType::kUINT8 doc; NVIDIA/TensorRT#3985)"
        for tensor in sorted(self.graph_inputs):
            if self.type_name(tensor) != "UINT8":
                continue
            for consumer, _ in self.consumers.get(tensor, []):
                if consumer.op_type != "Cast":
                    self.report(consumer, f"reads UINT8 network input {tensor!r} directly; "
                                          "\"All UINT8 inputs must directly feed into a cast "
                                          f"layer in TensorRT\" {source}")
        for node in self.graph.node:
            for tensor in node.output:
                if self.type_name(tensor) == "UINT8" and tensor not in self.graph_outputs:
                    self.report(node, f"produces UINT8 tensor {tensor!r} that is not a network "
                                      "output: \"UINT8 is only supported as network input or "
                                      f"output tensor types\" {source}")
        for tensor in sorted(self.graph_outputs):
            node = self.producer.get(tensor)
            if self.type_name(tensor) == "UINT8" and node is not None and node.op_type != "Cast":
                self.report(node, f"writes UINT8 network output {tensor!r} without a Cast from "
                                  f"FLOAT/FLOAT16 {source}")

    def check_Resize(self, node: onnx.NodeProto) -> None:
        attrs = {**RESIZE_DEFAULTS, **{a.name: _attr(node, a.name) for a in node.attribute}}
        mode, coords = attrs["mode"], attrs["coordinate_transformation_mode"]
        if mode not in RESIZE_MODES:
            self.report(node, f"mode {mode!r} is not a supported resize mode "
                              f"({', '.join(sorted(RESIZE_MODES))}; {self.facts.source})")
        if coords not in RESIZE_COORDINATE_MODES:
            modes = ", ".join(sorted(RESIZE_COORDINATE_MODES))
            self.report(node, f"coordinate_transformation_mode {coords!r} is not supported "
                              f"({modes}; {self.facts.source})")
        if mode == "nearest" and attrs["nearest_mode"] not in RESIZE_NEAREST_MODES:
            self.report(node, f"nearest_mode {attrs['nearest_mode']!r} is not supported "
                              f"({', '.join(sorted(RESIZE_NEAREST_MODES))})")
        if (self.version == "8.5" and mode == "nearest" and coords == "tf_half_pixel_for_nn"
                and attrs["nearest_mode"] != "round_prefer_floor"):
            self.report(node, "tf_half_pixel_for_nn needs nearest_mode round_prefer_floor in "
                              "TensorRT 8.5 (builtin_op_importers.cpp@7583da4c)")
        if attrs.get("antialias", 0):
            self.report(node, "antialias is not supported (\"Antialiasing is not supported\")")
        if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            self.report(node, f"keep_aspect_ratio_policy {attrs['keep_aspect_ratio_policy']!r}:"
                              " only `stretch` is supported")
        scales = node.input[2] if len(node.input) > 2 else ""
        if scales and scales in self.constants and mode == "linear":
            leading = np.asarray(self.constants[scales], dtype=float)[:-3]
            if np.any(leading != 1.0):
                self.report(node, "linear resize may only scale the 3 innermost dimensions "
                                  "(\"only supports linear resizing on the outermost 3 "
                                  "dimensions\", Resize importer)")
        if scales and scales not in self.constants and "axes" in attrs:
            rank = self.ranks.get(node.input[0])
            if rank is None or list(attrs["axes"]) != list(range(rank)):
                self.report(node, "with a tensor `scales`, `axes` must be an iota vector of "
                                  "length rank(input)")

    def check_Unsqueeze(self, node: onnx.NodeProto) -> None:
        if len(node.input) > 1 and node.input[1] and not self.is_constant(node.input[1]):
            self.report(node, f"`axes` must be a constant tensor ({self.facts.source})")

    def check_Squeeze(self, node: onnx.NodeProto) -> None:
        if len(node.input) > 1 and node.input[1] and not self.is_constant(node.input[1]):
            self.report(node, f"`axes` must be an initializer ({self.facts.source})")

    def check_Pad(self, node: onnx.NodeProto) -> None:
        if (self.version != "8.5" and len(node.input) > 3 and node.input[3]
                and not self.is_constant(node.input[3])):
            self.report(node, f"`axes` must be an initializer ({self.facts.source})")

    def check_InstanceNormalization(self, node: onnx.NodeProto) -> None:
        if self.version == "8.5" and not all(self.is_constant(n) for n in node.input[1:3]):
            self.report(node, "scale and B must be initializers (onnx/onnx-tensorrt@8.5-GA)")

    def check_Constant(self, node: onnx.NodeProto) -> None:
        bad = {"sparse_value", "value_string", "value_strings"} & {a.name for a in node.attribute}
        if bad:
            self.report(node, f"attribute {sorted(bad)[0]} is unsupported ({self.facts.source})")

    def check_qdq(self, node: onnx.NodeProto) -> None:
        data, scale = node.input[0], node.input[1] if len(node.input) > 1 else ""
        zero_point = node.input[2] if len(node.input) > 2 else ""
        if not scale:
            self.report(node, "has no scale input")
            return
        if not zero_point:
            if self.version == "8.5":
                self.report(node, "TensorRT 8.5 requires all 3 inputs (scale and a zero point "
                                  "of 0): \"This version of TensorRT requires 3 inputs\" "
                                  "(builtin_op_importers.cpp@7583da4c)")
            else:
                self.report(node, "no zero point: ONNX then quantizes to UINT8 but TensorRT to "
                                  "INT8 (\"ONNX default is UINT8, TRT will default to INT8\"), "
                                  "so the two runtimes compute different things; give an INT8 "
                                  "zero point of 0")
        else:
            self.check_zero_point(node, zero_point)
        if not self.is_constant(scale):
            self.report(node, f"scale {scale!r} is not a build-time constant (\"The subgraph "
                              "which terminates with the scale tensor must be a build-time "
                              "constant\": an initializer, Constant, or Constant -> Cast)")
            return
        values = np.asarray(self.constants[scale], dtype=np.float64)
        if np.any(values <= 0):
            self.report(node, "scale coefficients must all be positive")
        if values.size > 1:
            self.check_per_channel(node, data, values.size)

    def check_zero_point(self, node: onnx.NodeProto, zero_point: str) -> None:
        type_name = self.type_name(zero_point)
        if type_name == "UINT8":
            self.report(node, f"zero point {zero_point!r} is UINT8: TensorRT quantizes to INT8 "
                              "only (symmetric, signed; UINT8 zero points are refused)")
        elif type_name is not None and type_name not in ("INT8", "FP8", "INT4"):
            self.report(node, f"zero point {zero_point!r} is {type_name}, not INT8")
        elif type_name in ("FP8", "INT4") and self.version == "8.5":
            self.report(node, f"{type_name} quantization needs TensorRT 10")
        if not self.is_constant(zero_point):
            self.report(node, f"zero point {zero_point!r} is not a build-time constant")
        elif np.any(np.asarray(self.constants[zero_point]) != 0):
            self.report(node, f"zero point {zero_point!r} is not all zeros: TensorRT supports "
                              "symmetric quantization only (\"`x_zero_point` must be zero\", "
                              "\"`y_zero_point` must be 0\")")

    def check_per_channel(self, node: onnx.NodeProto, data: str, channels: int) -> None:
        weights = data
        if node.op_type == "DequantizeLinear" and not self.is_constant(data):
            producer = self.producer.get(data)  # weights as FP32 -> Q -> DQ
            if producer is not None and producer.op_type == "QuantizeLinear":
                weights = producer.input[0]
        if not self.is_constant(weights):
            self.report(node, f"per-channel scale ({channels} values) on activation {data!r}: "
                              "\"Activations cannot be quantized per-channel\"; use one scale")
            return
        rank = self.ranks.get(weights, np.ndim(self.constants[weights]))
        explicit = any(a.name == "axis" for a in node.attribute)
        axis = _attr(node, "axis") if explicit else 1  # ONNX's default axis is 1
        axis = axis + rank if axis < 0 else axis
        if not explicit:
            self.report(node, "per-channel Q/DQ without an `axis` attribute: ONNX reads axis 1, "
                              "the TensorRT parser axis 0 (\"axis\" defaults to nbDims -> 0); "
                              "write axis=0 explicitly")
        shape = np.shape(self.constants[weights])
        if axis < len(shape) and shape[axis] != channels:
            self.report(node, f"{channels} scales for {shape[axis]} channels on axis {axis}")
        for consumer, index in self.weight_consumers(node):
            if consumer.op_type == "Conv" and index == 1 and axis != 0:
                self.report(node, f"per-channel axis {axis} on Conv weights {weights!r}: "
                                  "TensorRT quantizes Conv weights (KCRS) per output channel, "
                                  "axis 0")
            elif consumer.op_type != "Conv" or index == 0:  # a Conv bias: the type rule decides
                self.report(node, f"per-channel quantization feeding {consumer.op_type} input "
                                  f"{index}: only documented for Conv weights (KCRS, axis 0)")

    def weight_consumers(self, node: onnx.NodeProto) -> Iterable[tuple[onnx.NodeProto, int]]:
        for consumer, index in self.consumers.get(node.output[0], []):
            if node.op_type == "QuantizeLinear" and consumer.op_type == "DequantizeLinear":
                continue  # the DQ of a weight Q/DQ pair is checked on its own
            yield consumer, index


def _attr(node: onnx.NodeProto, name: str):
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return None


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
        if attribute.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.asarray(onnx.helper.get_attribute_value(attribute))
    return None
