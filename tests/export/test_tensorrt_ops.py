"""Every op in our exported graphs is one TensorRT (8.5 on JetPack 5.1, 10.3 on JetPack 6) parses.

TensorRT cannot run here, so real exports of a nano checkpoint (uint8 and float I/O, static and
dynamic H/W, FP16, INT8 Q/DQ for target tensorrt) are checked against the support facts in
tests/support/tensorrt_onnx_support.py, which cite the onnx-tensorrt operator matrix, parser source
and TensorRT headers they come from. Small hand-built graphs prove the checker catches what breaks
those limits.

The default uint8 HWC export must cast at the graph's edges: TensorRT accepts UINT8 only as a
network input feeding a Cast directly or a network output written by a Cast. The previous
ordering (Transpose/Unsqueeze on the UINT8 input, Squeeze/Transpose on the UINT8 output) broke
that in both versions; test_uint8_casts_inside_the_graph_are_caught keeps it caught.

INT8 for target tensorrt keeps Conv biases in float: ONNX Runtime's default INT32 biases behind
DequantizeLinear break TensorRT, which dequantizes INT8 only (check_graph reports them).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from stylecast.export import onnx_export, quantize
from stylecast.export.deploy_model import fold_batchnorm
from stylecast.training.checkpoint import CheckpointInfo, load_generator, save_checkpoint
from stylecast.training.presets import build_generator, preset_config

import support.tensorrt_onnx_support as trt

SIZE = (64, 96)
VERSIONS = trt.VERSIONS

UINT8_RULE = (
    "TensorRT allows UINT8 only as a network input feeding a Cast directly or a network output "
    "written by a Cast (NVIDIA/TensorRT@8.5.2 NvInferRuntimeCommon.h DataType::kUINT8; "
    "onnx/onnx-tensorrt@10.1-GA docs/operators.md: 'UINT8 is only supported as network input or "
    "output tensor types'; NVIDIA/TensorRT#3985)"
)

# --------------------------------------------------------------------------- real exports


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory):
    """Small real photos: verification images for export and calibration images for INT8."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("trt_photos")
    for name, image in [("astronaut", data.astronaut()), ("chelsea", data.chelsea()),
                        ("coffee", data.coffee()), ("rocket", data.rocket())]:
        Image.fromarray(np.ascontiguousarray(image[:128, :192])).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A nano checkpoint whose BatchNorms carry non-trivial statistics (folded at export)."""
    torch.manual_seed(0)
    generator = build_generator("nano")
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.7, 1.3)
                module.bias.uniform_(-0.2, 0.2)
    path = tmp_path_factory.mktemp("trt_ckpt") / "nano.ckpt"
    save_checkpoint(path, info=CheckpointInfo("fit", 1, "nano", preset_config("nano"), "test"),
                    generator=generator, train_state={}, options={})
    return path


VARIANTS = {
    "uint8-static": {"size": SIZE},
    "uint8-dynamic": {"size": None},
    "float-static": {"size": SIZE, "float_io": True},
    "float-dynamic": {"size": None, "float_io": True},
}


@pytest.fixture(scope="module")
def exported(checkpoint, photos_dir, tmp_path_factory):
    """variant name -> path of that export, each exported once for the whole module."""
    folder = tmp_path_factory.mktemp("trt_exports")
    cache: dict[str, object] = {}

    def get(variant: str):
        if variant not in cache:
            path = folder / f"{variant}.onnx"
            onnx_export.export_onnx(checkpoint, path, images=photos_dir, **VARIANTS[variant])
            cache[variant] = path
        return cache[variant]

    return get


@pytest.fixture(scope="module")
def artifact(exported, photos_dir, tmp_path_factory):
    """(precision, variant) -> path: the FP32 export, or its FP16 / INT8 (target tensorrt) form."""
    folder = tmp_path_factory.mktemp("trt_quantized")
    cache: dict[tuple[str, str], object] = {}

    def get(precision: str, variant: str):
        if precision == "fp32":
            return exported(variant)
        if (precision, variant) not in cache:
            path = folder / f"{variant}-{precision}.onnx"
            if precision == "fp16":
                quantize.convert_fp16(exported(variant), path, images=photos_dir)
            else:
                quantize.quantize_int8(exported(variant), path, photos_dir, target="tensorrt",
                                       images=photos_dir)
            cache[precision, variant] = path
        return cache[precision, variant]

    return get


# (precision, variant): every I/O variant in FP32; FP16 and INT8 on the static ones.
ARTIFACTS = [*(("fp32", v) for v in VARIANTS),
             *((p, v) for p in ("fp16", "int8") for v in ("float-static", "uint8-static"))]


@pytest.mark.parametrize(("precision", "variant", "version"),
                         [pytest.param(*a, v, id=f"{a[0]}-{a[1]}-trt{v}")
                          for a in ARTIFACTS for v in VERSIONS])
def test_exported_graph_is_supported(artifact, precision, variant, version):
    problems = trt.check_graph(onnx.load(artifact(precision, variant)), version)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_exported_graph_only_uses_vetted_ops(exported, variant):
    """Whatever else fails, the ops themselves are all rows marked supported in both versions."""
    model = onnx.load(exported(variant))
    ops = {node.op_type for node in model.graph.node}
    assert ops <= set(trt.OPERATORS), ops - set(trt.OPERATORS)
    for op in ops:
        assert all(trt.OPERATORS[op].supported[v] for v in VERSIONS), op
    # The properties the support matrix constrains, as exported today: nearest/asymmetric/floor
    # resize with constant scales, and depthwise (grouped) 2D convolutions.
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert resizes
    for node in resizes:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["mode"] == b"nearest"
        assert attrs["coordinate_transformation_mode"] == b"asymmetric"
        assert attrs["nearest_mode"] == b"floor"
        assert node.input[2] in {i.name for i in model.graph.initializer}
    groups = [helper.get_attribute_value(a) for n in model.graph.node if n.op_type == "Conv"
              for a in n.attribute if a.name == "group"]
    assert any(g > 1 for g in groups), "expected depthwise convolutions"


def test_fp16_graph_carries_fp16_weights(artifact):
    model = onnx.load(artifact("fp16", "uint8-static"))
    assert TensorProto.FLOAT16 in {i.data_type for i in model.graph.initializer}


def test_int8_tensorrt_graph_quantizes_conv_weights_per_output_channel(artifact):
    """Q/DQ present; quantized Conv weights have per-channel scales (axis 0 is checked above)."""
    model = onnx.load(artifact("int8", "float-static"))
    ops = [node.op_type for node in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops, "no Q/DQ nodes"
    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    per_channel = 0
    for node in model.graph.node:
        dq = producers.get(node.input[1]) if node.op_type == "Conv" else None
        if dq is not None and dq.op_type == "DequantizeLinear":
            per_channel += np.size(initializers.get(dq.input[1], 1)) > 1
    assert per_channel, "no Conv has per-channel weight scales"


class CastsInsideUint8ImageModel(torch.nn.Module):
    """Uint8ImageModel as it was: layout changes on UINT8 tensors, inside the casts."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 127.5 - 1.0
        y = self.generator(x)
        pixels = torch.clamp((y + 1.0) * 127.5 + 0.5, 0.0, 255.0).to(torch.uint8)
        return pixels.squeeze(0).permute(1, 2, 0)


@pytest.mark.parametrize("size", [SIZE, None], ids=["static", "dynamic"])
def test_uint8_casts_inside_the_graph_are_caught(checkpoint, exported, monkeypatch, size):
    """A real export with the old ordering breaks the UINT8 rule (and only it) in both versions;
    today's cast-at-the-edges export computes the very same pixels."""
    generator, _ = load_generator(checkpoint)
    monkeypatch.setattr(onnx_export, "Uint8ImageModel", CastsInsideUint8ImageModel)
    model = onnx_export.trace_to_onnx(fold_batchnorm(generator), size, float_io=False)
    for version in VERSIONS:
        problems = trt.check_graph(model, version)
        assert any("must directly feed into a cast" in p for p in problems), problems
        assert any("is not a network output" in p for p in problems), problems
        assert all("UINT8" in p for p in problems), "\n".join(problems)
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[100:164, 200:296])
    today = onnxruntime.InferenceSession(str(exported("uint8-static" if size else
                                                      "uint8-dynamic")))
    casts_inside = onnxruntime.InferenceSession(model.SerializeToString())
    feed = {onnx_export.INPUT: image}
    np.testing.assert_array_equal(today.run(None, feed)[0], casts_inside.run(None, feed)[0])


def test_uint8_export_casts_at_the_graph_edges(exported):
    """The property behind the UINT8 rule (UINT8_RULE), stated on the export itself."""
    for variant in ("uint8-static", "uint8-dynamic"):
        graph = onnx.load(exported(variant)).graph
        consumers = [n for n in graph.node if onnx_export.INPUT in n.input]
        assert [n.op_type for n in consumers] == ["Cast"], variant
        producer = next(n for n in graph.node if onnx_export.OUTPUT in n.output)
        assert producer.op_type == "Cast", f"{variant}: {UINT8_RULE}"
        assert helper.get_attribute_value(producer.attribute[0]) == TensorProto.UINT8


# --------------------------------------------------------------------------- the checker
# Hand-built graphs: a control graph that passes, and one deliberate break per documented limit.

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _info(name, elem=F, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _resize_model(opset=17, scales=(1, 1, 2, 2), **attrs):
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
             "nearest_mode": "floor", **attrs}
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", **attrs)
    return _model([node], [_info("x")], [_info("y", shape=(1, 3, 16, 16))],
                  [_init("scales", np.array(scales, dtype=np.float32))], opset=opset)


def _control_model(opset=17):
    """float NCHW -> depthwise Conv -> Relu -> nearest Resize -> Tanh: inside every limit."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Resize", ["r", "", "scales"], ["u"], name="resize", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Tanh", ["u"], ["y"], name="tanh"),
    ]
    inits = [_init("w", np.ones((3, 1, 3, 3), np.float32)),
             _init("scales", np.array([1, 1, 2, 2], np.float32))]
    return _model(nodes, [_info("x")], [_info("y", shape=(1, 3, 16, 16))], inits, opset=opset)


def _act_qdq_model(zero_point=0, scale=0.02, dynamic_scale=False, with_zero_point=True):
    """x -> QuantizeLinear -> DequantizeLinear -> Relu (activation, per-tensor)."""
    if not isinstance(zero_point, np.ndarray | np.generic):
        zero_point = np.int8(zero_point)
    qdq_in = ["x", "s"] + (["zp"] if with_zero_point else [])
    nodes = [helper.make_node("QuantizeLinear", qdq_in, ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", *qdq_in[1:]], ["dq"], name="dq"),
             helper.make_node("Relu", ["dq"], ["y"], name="relu")]
    inputs = [_info("x")]
    inits = [_init("zp", zero_point)] if with_zero_point else []
    if dynamic_scale:
        inputs.append(helper.make_tensor_value_info("s", F, []))
    else:
        inits.append(_init("s", np.asarray(scale, np.float32)))
    return _model(nodes, inputs, [_info("y")], inits)


def _weight_qdq_model(axis=0, channels_axis=0, weights_dtype=np.int8, bias=None,
                      omit_axis=False):
    """x -> Q -> DQ -> Conv, Conv weights int8 -> DequantizeLinear (per-channel)."""
    weights = np.ones((4, 3, 3, 3), weights_dtype)
    channels = weights.shape[channels_axis]
    dq_attrs = {} if omit_axis else {"axis": axis}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xzp"], ["xq"], name="xq"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xzp"], ["xdq"], name="xdq"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wzp"], ["wdq"], name="wdq", **dq_attrs),
        helper.make_node("Conv", ["xdq", "wdq", *(["bdq"] if bias is not None else [])], ["y"],
                         name="conv", pads=[1, 1, 1, 1]),
    ]
    inits = [_init("xs", np.float32(0.05)), _init("xzp", np.int8(0)), _init("w", weights),
             _init("ws", np.full(channels, 0.01, np.float32)),
             _init("wzp", np.zeros(channels, np.int8))]
    if bias is not None:
        nodes.insert(0, helper.make_node("DequantizeLinear", ["b", "bs", "bzp"], ["bdq"],
                                         name="bias_dq"))
        inits += [_init("b", bias), _init("bs", np.float32(0.0005)), _init("bzp", np.int32(0))]
    return _model(nodes, [_info("x")], [_info("y", shape=(1, 4, 8, 8))], inits)


def _cast_model(to, source=F, clip=False, then=None):
    nodes, inits = [], []
    x = "x"
    if clip:
        nodes.append(helper.make_node("Clip", ["x", "lo", "hi"], ["clipped"], name="clip"))
        inits += [_init("lo", np.float32(0)), _init("hi", np.float32(255))]
        x = "clipped"
    nodes.append(helper.make_node("Cast", [x], ["cast"], name="cast", to=to))
    out = "cast"
    if then:
        nodes.append(helper.make_node(then, ["cast"], ["moved"], name="after", perm=[0, 1, 3, 2]))
        out = "moved"
    return _model(nodes, [_info("x", source)], [_info(out, to)], inits)


def _uint8_input_model():
    """UINT8 HWC input transposed before its Cast (the pattern of today's export)."""
    nodes = [helper.make_node("Transpose", ["image"], ["chw"], name="hwc_to_chw", perm=[2, 0, 1]),
             helper.make_node("Cast", ["chw"], ["y"], name="cast", to=F)]
    return _model(nodes, [_info("image", TensorProto.UINT8, (8, 8, 3))],
                  [_info("y", F, (3, 8, 8))])


def _uint8_boundary_model():
    """UINT8 in -> Cast -> Transpose ... Clip -> Transpose -> Cast -> UINT8 out: accepted."""
    nodes = [helper.make_node("Cast", ["image"], ["f"], name="to_float", to=F),
             helper.make_node("Transpose", ["f"], ["chw"], name="hwc_to_chw", perm=[2, 0, 1]),
             helper.make_node("Clip", ["chw", "lo", "hi"], ["c"], name="clip"),
             helper.make_node("Transpose", ["c"], ["hwc"], name="chw_to_hwc", perm=[1, 2, 0]),
             helper.make_node("Cast", ["hwc"], ["y"], name="to_uint8", to=TensorProto.UINT8)]
    shape = (8, 8, 3)
    return _model(nodes, [_info("image", TensorProto.UINT8, shape)],
                  [_info("y", TensorProto.UINT8, shape)],
                  [_init("lo", np.float32(0)), _init("hi", np.float32(255))])


def _squeeze_dynamic_axes_model():
    nodes = [helper.make_node("Squeeze", ["x", "axes"], ["y"], name="squeeze")]
    axes = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    return _model(nodes, [_info("x"), axes], [helper.make_tensor_value_info("y", F, None)])


def _single_op_model(op, domain="", **attrs):
    node = helper.make_node(op, ["x"], ["y"], name=op.lower(), domain=domain, **attrs)
    model = _model([node], [_info("x")], [_info("y")])
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def _qlinearconv_model():
    inputs = ["x", "xs", "xzp", "w", "ws", "wzp", "ys", "yzp"]
    node = helper.make_node("QLinearConv", inputs, ["y"], name="qconv")
    inits = [_init("xs", np.float32(0.1)), _init("xzp", np.int8(0)),
             _init("w", np.ones((4, 3, 3, 3), np.int8)), _init("ws", np.float32(0.1)),
             _init("wzp", np.int8(0)), _init("ys", np.float32(0.1)), _init("yzp", np.int8(0))]
    return _model([node], [_info("x", TensorProto.INT8)],
                  [_info("y", TensorProto.INT8, (1, 4, 6, 6))], inits)


BOTH = dict.fromkeys(VERSIONS, True)
ONLY_85 = {"8.5": True, "10.3": False}
ONLY_103 = {"8.5": False, "10.3": True}

# id -> (graph factory, which versions must flag it, text the problem must contain)
BAD_GRAPHS = {
    "unsupported-op-QLinearConv": (_qlinearconv_model, BOTH, "Supported = N"),
    "unvetted-op": (lambda: _single_op_model("Softplus"), BOTH, "not vetted"),
    "custom-domain-op": (lambda: _single_op_model("Gelu", domain="com.microsoft"), BOTH,
                         "com.microsoft"),
    "resize-cubic": (lambda: _resize_model(mode="cubic"), BOTH, "mode 'cubic'"),
    "resize-tf_crop_and_resize": (
        lambda: _resize_model(coordinate_transformation_mode="tf_crop_and_resize"), BOTH,
        "coordinate_transformation_mode 'tf_crop_and_resize'"),
    "resize-linear-on-batch": (lambda: _resize_model(mode="linear", scales=(2, 1, 2, 2)), BOTH,
                               "3 innermost"),
    "resize-tf_half_pixel_for_nn-floor": (
        lambda: _resize_model(coordinate_transformation_mode="tf_half_pixel_for_nn"), ONLY_85,
        "round_prefer_floor"),
    "resize-antialias": (lambda: _resize_model(opset=18, antialias=1), BOTH, "antialias"),
    "opset-18": (lambda: _control_model(opset=18), ONLY_85, "opset 18"),
    "qdq-uint8-zero-point": (lambda: _act_qdq_model(zero_point=np.uint8(0)), BOTH, "UINT8"),
    "qdq-nonzero-zero-point": (lambda: _act_qdq_model(zero_point=np.int8(3)), BOTH,
                               "not all zeros"),
    "qdq-scale-not-constant": (lambda: _act_qdq_model(dynamic_scale=True), BOTH,
                               "build-time constant"),
    "qdq-negative-scale": (lambda: _act_qdq_model(scale=np.float32(-0.1)), BOTH, "positive"),
    "qdq-no-zero-point": (lambda: _act_qdq_model(with_zero_point=False), BOTH, "zero point"),
    "qdq-per-channel-activation": (
        lambda: _act_qdq_model(scale=np.full(3, 0.02, np.float32),
                               zero_point=np.zeros(3, np.int8)), BOTH,
        "Activations cannot be quantized per-channel"),
    "qdq-per-channel-conv-axis-1": (lambda: _weight_qdq_model(axis=1, channels_axis=1), BOTH,
                                    "axis 1 on Conv weights"),
    "qdq-per-channel-axis-omitted": (lambda: _weight_qdq_model(omit_axis=True), BOTH,
                                     "without an `axis`"),
    "qdq-int32-bias": (lambda: _weight_qdq_model(bias=np.zeros(4, np.int32)), BOTH,
                       "INT32 tensor 'b'"),
    "cast-to-int16": (lambda: _cast_model(TensorProto.INT16), BOTH, "Cast to INT16"),
    "cast-to-int8": (lambda: _cast_model(TensorProto.INT8), ONLY_103, "Cast to INT8"),
    "cast-int32-to-uint8": (lambda: _cast_model(TensorProto.UINT8, source=TensorProto.INT32),
                            BOTH, "only supported to/from FLOAT and FLOAT16"),
    "cast-to-uint8-unclipped": (lambda: _cast_model(TensorProto.UINT8), BOTH,
                                "not clipped to [0, 255]"),
    "uint8-input-transposed-before-cast": (_uint8_input_model, BOTH,
                                           "must directly feed into a cast"),
    "uint8-intermediate-tensor": (
        lambda: _cast_model(TensorProto.UINT8, clip=True, then="Transpose"), BOTH,
        "is not a network output"),
    "squeeze-axes-not-initializer": (_squeeze_dynamic_axes_model, BOTH,
                                     "`axes` must be an initializer"),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("factory", [_control_model, _uint8_boundary_model, _weight_qdq_model,
                                     lambda: _cast_model(TensorProto.UINT8, clip=True)],
                         ids=["conv-relu-resize-tanh", "uint8-cast-at-boundary",
                              "qdq-per-channel-conv-axis-0", "clip-then-cast-uint8"])
def test_checker_accepts_graphs_inside_the_limits(factory, version):
    problems = trt.check_graph(factory(), version)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", list(BAD_GRAPHS))
def test_checker_catches_graphs_outside_the_limits(case, version):
    factory, flagged, expected = BAD_GRAPHS[case]
    problems = trt.check_graph(factory(), version)
    if flagged[version]:
        assert any(expected in p for p in problems), f"{expected!r} not in {problems}"
        assert all(p.startswith(f"TensorRT {version}: ") for p in problems), problems
    else:
        assert problems == [], "\n".join(problems)


def test_version_names():
    model = _control_model()
    assert trt.check_graph(model, "8.5.2") == trt.check_graph(model, "8.5") == []
    assert trt.check_graph(model, "10.3.0.26") == []
    with pytest.raises(ValueError, match=r"no TensorRT support facts for version '7\.1'"):
        trt.check_graph(model, "7.1")


def test_support_facts_are_complete_and_cited():
    assert set(trt.VERSION_FACTS) == set(VERSIONS)
    for version, facts in trt.VERSION_FACTS.items():
        assert "onnx/onnx-tensorrt@" in facts.source and "docs/operators.md" in facts.source
        assert facts.opset_min <= onnx_export.OPSET <= facts.opset_max, version
    for op, facts in trt.OPERATORS.items():
        assert set(facts.supported) == set(facts.types) == set(VERSIONS), op
        for version in VERSIONS:
            assert facts.supported[version] == bool(facts.types[version]), (op, version)
    # What our exports depend on, per the matrices: UINT8 only through Cast; Q/DQ int8 only.
    for version in VERSIONS:
        assert "UINT8" in trt.OPERATORS["Cast"].types[version]
        for op in ("Transpose", "Unsqueeze", "Squeeze", "Reshape", "Resize", "Conv"):
            assert "UINT8" not in trt.OPERATORS[op].types[version], op
        assert "UINT8" not in trt.OPERATORS["DequantizeLinear"].types[version]
        assert "INT8" in trt.OPERATORS["DequantizeLinear"].types[version]
