"""`stylecast-export quantize`: FP16 and INT8 (Q/DQ) artifacts from an FP32 one, with a report.

The FP32 artifacts are exported here from a nano generator trained for a few seconds (photos to
their sepia tone); calibration and held-out folders hold different scikit-image photos. Models
are small (64x96 static, or dynamic calibrated on 64x64 crops) so the file runs in seconds. Speed
is reported by the command but never asserted here: the measured 480x640 numbers sit beside
DEFAULT_KEEP_FP32 in export/quantize.py."""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, numpy_helper

from stylecast.core.artifact import read_onnx_contract
from stylecast.core.errors import EX_CONFIG, ArtifactError, InputError, run_cli
from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
from stylecast.export import quantize
from stylecast.export.onnx_export import export_onnx
from stylecast.training.checkpoint import CheckpointInfo, save_checkpoint
from stylecast.training.presets import build_generator, preset_config

STATIC = (64, 96)
PRE_POST_OPS = {"Transpose", "Unsqueeze", "Cast", "Div", "Sub", "Tanh", "Mul", "Clip", "Squeeze"}
# Minimum PSNR to FP32 over the held-out photos, measured on these models less ~6 dB:
# fp16 62 dB, int8 cpu 46.6 dB (static) / 46.5 dB (dynamic), int8 tensorrt 40.2 dB.
MIN_PSNR = {"fp16": 55.0, "cpu": 40.0, "dynamic": 40.0, "float_io": 40.0, "tensorrt": 35.0}


def save_photo(folder, name: str, image: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """calib/: four photos; heldout/: three others the calibration never saw."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        save_photo(root / "calib", f"{name}.jpg", getattr(data, name)())
    gray = data.camera()
    save_photo(root / "heldout", "camera.png", np.repeat(gray[..., None], 3, axis=2))
    save_photo(root / "heldout", "hubble.png", data.hubble_deep_field()[:300, :300])
    save_photo(root / "heldout", "cat.png", data.cat())
    return root


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, folders):
    """FP32 artifacts of one nano generator: static 64x96, dynamic, and static with float I/O."""
    root = tmp_path_factory.mktemp("fp32")
    info = CheckpointInfo("fit", 1, "nano", preset_config("nano"), "teststyle")
    save_checkpoint(root / "nano.ckpt", info=info, generator=trained_generator(), train_state={},
                    options={})
    shapes = {"static": {"size": STATIC}, "dynamic": {},
              "float_io": {"size": STATIC, "float_io": True}}
    for name, options in shapes.items():
        export_onnx(root / "nano.ckpt", root / f"{name}.onnx", images=folders / "heldout",
                    **options)
    return {name: root / f"{name}.onnx" for name in shapes}


def trained_generator(steps: int = 150, preset: str = "nano") -> torch.nn.Module:
    """A nano generator trained for a few seconds to map photos to their sepia tone (L1).

    Random weights make a high-gain noise generator whose every rounding error shows in the
    output; a trained one is smooth, like the styles users quantize. Training also leaves the
    BatchNorm layers real statistics for export to fold.
    """
    from skimage import data

    torch.manual_seed(0)
    photos = [torch.tensor(photo).permute(2, 0, 1) / 127.5 - 1.0
              for photo in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]
    generator = build_generator(preset).train()
    optimizer = torch.optim.Adam(generator.parameters(), 3e-3)
    for _ in range(steps):
        batch = torch.stack([random_crop(photo, 48) for photo in photos])
        loss = (generator(batch) - sepia(batch)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return generator.eval()


def random_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (int(torch.randint(0, side - size, ())) for side in image.shape[1:])
    return image[:, top : top + size, left : left + size]


def sepia(batch: torch.Tensor) -> torch.Tensor:
    matrix = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return torch.einsum("ij,njhw->nihw", matrix, (batch + 1) / 2).clamp(0, 1) * 2 - 1


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, fp32, folders):
    """One quantized artifact per case; each result kept for the tests below."""
    root = tmp_path_factory.mktemp("quantized")
    common = {"images": folders / "heldout", "threads": 1}
    calib = folders / "calib"
    return {
        "fp16": quantize.convert_fp16(fp32["static"], root / "fp16.onnx", **common),
        "cpu": quantize.quantize_int8(fp32["static"], root / "cpu.onnx", calib, target="cpu",
                                      **common),
        "tensorrt": quantize.quantize_int8(fp32["static"], root / "trt.onnx", calib,
                                           target="tensorrt", **common),
        "dynamic": quantize.quantize_int8(fp32["dynamic"], root / "dyn.onnx", calib,
                                          calib_size=(64, 64), **common),
        "float_io": quantize.quantize_int8(fp32["float_io"], root / "float.onnx", calib,
                                           **common),
        "float_io_fp16": quantize.convert_fp16(fp32["float_io"], root / "float16.onnx", **common),
    }


SOURCE = {"dynamic": "dynamic", "float_io": "float_io", "float_io_fp16": "float_io"}


def io_types(model: onnx.ModelProto) -> list[tuple[str, int, list]]:
    def describe(value):
        tensor = value.type.tensor_type
        return value.name, tensor.elem_type, [d.dim_value or d.dim_param for d in tensor.shape.dim]

    return [describe(v) for v in [*model.graph.input, *model.graph.output]]


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def conv_weight_is_quantized(model: onnx.ModelProto, conv: onnx.NodeProto) -> bool:
    source = producers(model).get(conv.input[1])
    return source is not None and source.op_type == "DequantizeLinear"


def quantized_conv_weights(model: onnx.ModelProto) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(int weights, scales, DequantizeLinear axis) of every Conv whose weight is quantized."""
    constants = {init.name: init for init in model.graph.initializer}
    made_by = producers(model)
    found = []
    for conv in model.graph.node:
        if conv.op_type == "Conv" and conv_weight_is_quantized(model, conv):
            dequantize = made_by[conv.input[1]]
            weight = numpy_helper.to_array(constants[dequantize.input[0]])
            scale = numpy_helper.to_array(constants[dequantize.input[1]])
            axis = next((a.i for a in dequantize.attribute if a.name == "axis"), 1)
            found.append((weight, scale, axis))
    return found


@pytest.mark.parametrize("case", ["fp16", "cpu", "tensorrt", "dynamic", "float_io",
                                  "float_io_fp16"])
def test_artifact_keeps_contract_and_io_with_new_precision(outputs, fp32, case):
    result = outputs[case]
    source = fp32[SOURCE.get(case, "static")]
    precision = "fp16" if "fp16" in case else "int8"
    assert result.path.is_file() and result.size_bytes == result.path.stat().st_size
    assert result.precision == precision
    contract, original = read_onnx_contract(result.path), read_onnx_contract(source)
    assert contract.precision == precision
    assert contract.model_dump(exclude={"precision"}) == original.model_dump(exclude={"precision"})
    model = onnx.load(result.path)
    onnx.checker.check_model(model, full_check=True)
    assert io_types(model) == io_types(onnx.load(source))


@pytest.mark.parametrize("case", ["fp16", "cpu", "tensorrt", "float_io", "float_io_fp16"])
def test_engine_runs_it_close_to_fp32(outputs, fp32, case):
    from skimage import data

    frame = np.ascontiguousarray(data.coffee()[100:164, 200:296])
    expected = OnnxEngine(fp32[SOURCE.get(case, "static")])(frame)
    actual = OnnxEngine(outputs[case].path)(frame)
    assert actual.shape == (*STATIC, 3) and actual.dtype == np.uint8
    assert np.abs(actual.astype(int) - expected).mean() < 4


def test_dynamic_int8_runs_at_any_multiple_of_four(outputs):
    engine = OnnxEngine(outputs["dynamic"].path)
    assert engine.contract.is_dynamic
    for height, width in [(64, 96), (96, 64), (120, 160)]:
        assert engine(np.full((height, width, 3), 90, np.uint8)).shape == (height, width, 3)


def test_report_quality_in_range(outputs):
    for case, minimum in MIN_PSNR.items():
        comparison = outputs[case].comparison
        assert comparison.images == 3
        assert minimum <= comparison.psnr_min <= comparison.psnr_mean < 100, case
        assert 0.98 < comparison.ssim_mean <= 1, case


def test_report_and_dict_describe_sizes_quality_and_speed(outputs, fp32):
    result = outputs["cpu"]
    assert result.fp32_size_bytes == fp32["static"].stat().st_size
    assert result.latency_ms > 0 and result.fp32_latency_ms > 0 and result.threads == 1
    assert result.input_size == STATIC
    text = result.report()
    assert len(text.splitlines()) == 3
    for needle in ("INT8 (cpu target)", "MB", "PSNR", "SSIM", "1 threads, 96x64", "ms vs FP32"):
        assert needle in text
    record = json.loads(json.dumps(result.as_dict()))
    assert record["precision"] == "int8" and record["target"] == "cpu"
    assert record["input_size"] == {"width": STATIC[1], "height": STATIC[0]}
    assert record["speedup"] == pytest.approx(result.fp32_latency_ms / result.latency_ms)
    assert record["comparison"]["psnr_mean"] == pytest.approx(result.comparison.psnr_mean)


def test_fp16_graph_holds_fp16_weights(outputs):
    model = onnx.load(outputs["fp16"].path)
    constants = {init.name: init for init in model.graph.initializer}
    weights = [constants[node.input[i]] for node in model.graph.node if node.op_type == "Conv"
               for i in (1, 2) if i < len(node.input)]
    assert len(weights) == 2 * 22 and {w.data_type for w in weights} == {TensorProto.FLOAT16}


def is_low_resolution(conv_name: str) -> bool:
    """The nano convolutions that run at 1/4 resolution only: the last pointwise conv of the
    downsampling and the inverted-residual body."""
    return "/body/" in conv_name or "/down.1.1/" in conv_name


@pytest.mark.parametrize("case", ["cpu", "tensorrt", "dynamic", "float_io"])
def test_int8_quantizes_the_default_layers_only(outputs, case):
    """tensorrt: every conv but the first and the last; cpu: the low-resolution core only.
    The pixel pre/post-processing never gets Q/DQ."""
    model = onnx.load(outputs[case].path)
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert len(convs) == 22
    quantized = [conv_weight_is_quantized(model, conv) for conv in convs]
    if case == "tensorrt":
        assert quantized == [False] + [True] * 20 + [False]
    else:
        assert quantized == [is_low_resolution(conv.name) for conv in convs]
        assert sum(quantized) == 13
    made_by = producers(model)
    for node in model.graph.node:
        if node.op_type in PRE_POST_OPS:
            assert all(made_by.get(name, node).op_type != "DequantizeLinear"
                       for name in node.input), node.name


@pytest.fixture(scope="module")
def swift_fp32(tmp_path_factory, folders):
    """A dynamic FP32 artifact of the subpixel-tail preset (DepthToSpace at the end)."""
    root = tmp_path_factory.mktemp("swift")
    info = CheckpointInfo("fit", 1, "swift", preset_config("swift"), "teststyle")
    save_checkpoint(root / "swift.ckpt", info=info, generator=trained_generator(preset="swift"),
                    train_state={}, options={})
    export_onnx(root / "swift.ckpt", root / "swift.onnx", images=folders / "heldout")
    return root / "swift.onnx"


def test_cpu_target_quantizes_every_layer_of_a_subpixel_tail(swift_fp32, folders, tmp_path,
                                                               monkeypatch):
    """No convolution runs at full resolution, and INT8 gains at half resolution too: every
    conv is quantized, and the quantizer leaves nothing behind in the working directory."""
    monkeypatch.chdir(tmp_path)
    result = quantize.quantize_int8(swift_fp32, tmp_path / "out" / "swift.onnx", folders / "calib",
                                    calib_size=(64, 64), images=folders / "heldout", threads=1)
    model = onnx.load(result.path)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs and all(conv_weight_is_quantized(model, conv) for conv in convs)
    assert "DepthToSpace" in {node.op_type for node in model.graph.node}
    assert result.comparison.psnr_mean >= MIN_PSNR["dynamic"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    assert OnnxEngine(result.path)(np.zeros((68, 92, 3), np.uint8)).shape == (68, 92, 3)


def test_cpu_target_uses_uint8_activations_and_7_bit_per_channel_weights(outputs):
    model = onnx.load(outputs["cpu"].path)
    constants = {init.name: init for init in model.graph.initializer}
    activation_types = {constants[node.input[2]].data_type for node in model.graph.node
                        if node.op_type == "QuantizeLinear"}
    assert activation_types == {TensorProto.UINT8}
    weights = quantized_conv_weights(model)
    assert weights
    for weight, scale, _axis in weights:
        assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],)
        assert weight.min() >= -64 and weight.max() <= 64  # reduce_range: 7-bit weights


def test_tensorrt_target_is_symmetric_int8_with_per_channel_conv_weights(outputs):
    model = onnx.load(outputs["tensorrt"].path)
    constants = {init.name: init for init in model.graph.initializer}
    qdq = [node for node in model.graph.node
           if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zero_points = [constants[node.input[2]] for node in qdq]
    assert zero_points and {zp.data_type for zp in zero_points} == {TensorProto.INT8}
    assert all(not numpy_helper.to_array(zp).any() for zp in zero_points)
    weights = quantized_conv_weights(model)
    assert weights
    for weight, scale, axis in weights:
        assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],) and axis == 0
    assert any(node.op_type == "Add" for node in model.graph.node)
    made_by = producers(model)
    residual_adds = [node for node in model.graph.node if node.op_type == "Add"
                     and all(made_by.get(i) is not None and made_by[i].op_type == "DequantizeLinear"
                             for i in node.input)]
    assert len(residual_adds) == 4  # nano: one per inverted-residual block, both inputs Q/DQ


def test_keep_fp32_patterns_leave_those_layers_float(fp32, folders, tmp_path):
    result = quantize.quantize_int8(
        fp32["static"], tmp_path / "keep.onnx", folders / "calib", target="cpu",
        keep_fp32=["first", "*/up.1/*", "/generator/head/head.0/Conv"], images=folders / "heldout",
        threads=1)
    model = onnx.load(result.path)
    for conv in (node for node in model.graph.node if node.op_type == "Conv"):
        kept = "/up.1/" in conv.name or "/stem/" in conv.name or "/head/" in conv.name
        assert conv_weight_is_quantized(model, conv) != kept, conv.name


def test_keep_fp32_selectors(fp32):
    static, dynamic = onnx.load(fp32["static"]), onnx.load(fp32["dynamic"])
    contract = read_onnx_contract(fp32["static"])
    resolve = quantize.resolve_nodes
    assert resolve(static, ["first", "last"], contract, STATIC) == {
        "/generator/stem/stem.0/Conv", "/generator/head/head.0/Conv"}
    high = resolve(static, ["high-res"], contract, STATIC)
    convs = [node.name for node in static.graph.node if node.op_type == "Conv"]
    assert [name in high for name in convs] == [not is_low_resolution(name) for name in convs]
    assert "/generator/body/body.0/Add" not in high and "/generator/up/up.0/up.0.0/Resize" in high
    dynamic_contract = read_onnx_contract(fp32["dynamic"])
    assert resolve(dynamic, ["high-res"], dynamic_contract, (96, 128)) == high
    with pytest.raises(InputError, match="'\\*/hed/\\*': matches no node"):
        resolve(static, ["first", "*/hed/*"], contract, STATIC)


def test_generator_nodes_leave_out_pixel_conversions(fp32):
    model = onnx.load(fp32["static"])
    inside = set(quantize.generator_nodes(model))
    assert {n.op_type for n in model.graph.node if n.name in inside} == {
        "Conv", "Relu", "Add", "Resize"}
    assert not any(n.op_type in PRE_POST_OPS for n in model.graph.node if n.name in inside)
    assert "/Add" not in inside and "/generator/body/body.0/Add" in inside


def test_command_prints_the_report(fp32, folders, tmp_path, capsys):
    args = argparse.Namespace(model=fp32["static"], output=tmp_path / "out.onnx",
                              precision="fp16", calib=None, target="cpu",
                              images=folders / "heldout", threads=1)
    assert quantize.quantize_command(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'out.onnx'}: FP16") and "PSNR" in out


def plain_onnx(fp32, tmp_path):
    model = onnx.load(fp32["static"])
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "plain.onnx")
    return tmp_path / "plain.onnx"


BAD_INPUTS = {
    "missing model": (lambda fp32, d: d / "absent.onnx", "int8", "calib", ArtifactError,
                      "no such model file"),
    "garbage model": (lambda fp32, d: _write(d / "junk.onnx", b"\x00not onnx" * 50), "fp16", None,
                      ArtifactError, "not a readable ONNX model"),
    "plain onnx": (plain_onnx, "int8", "calib", ArtifactError, "not a stylecast artifact"),
    "int8 without calib": (lambda fp32, d: fp32["static"], "int8", None, InputError,
                           "--precision int8 needs --calib"),
    "missing calib": (lambda fp32, d: fp32["static"], "int8", "nowhere", InputError,
                      "no such folder"),
    "empty calib": (lambda fp32, d: fp32["static"], "int8", "empty", InputError,
                    "no .jpg/.jpeg/.png/.webp images found"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_78_and_writes_nothing(case, fp32, folders, tmp_path, capsys):
    make_model, precision, calib, error, message = BAD_INPUTS[case]
    (tmp_path / "empty").mkdir()
    model = make_model(fp32, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calib_dir = {"calib": folders / "calib", None: None}.get(calib, tmp_path / str(calib))
    args = argparse.Namespace(model=model, output=out_dir / "q.onnx", precision=precision,
                              calib=calib_dir, target="cpu", images=folders / "heldout",
                              threads=1)
    with pytest.raises(error, match=message):
        quantize.quantize_command(args)
    assert run_cli("stylecast-export", lambda: quantize.quantize_command(args)) == EX_CONFIG
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylecast-export: error: ")
    assert list(out_dir.iterdir()) == []


def test_refuses_an_artifact_that_is_not_fp32(outputs, folders, tmp_path):
    with pytest.raises(ArtifactError, match="precision is fp16; quantize starts from an fp32"):
        quantize.convert_fp16(outputs["fp16"].path, tmp_path / "again.onnx")
    assert not (tmp_path / "again.onnx").exists()
