"""`stylecast-export onnx`: a checkpoint becomes a checked, verified, atomically written artifact.

The checkpoint is a nano generator whose BatchNorm layers carry statistics gathered on real photos
(and non-trivial scales), so folding them into the convolutions is really exercised. Exports run
through the command's own entry point; outputs are compared on scikit-image's real photos.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from stylecast.core.artifact import read_onnx_contract
from stylecast.core.errors import EX_CONFIG, EX_FAILURE
from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
from stylecast.export import onnx_export
from stylecast.export.cli import main
from stylecast.export.deploy_model import Uint8ImageModel, weights_sha256
from stylecast.export.verification import torch_runner
from stylecast.training.checkpoint import load_generator

from support.checkpoints import photo_batch, save_nano_checkpoint

STATIC = (96, 128)
# Every op the exported graph may hold. Conv/Relu/Add/Resize/Tanh are the generator (BatchNorm
# folded away); the rest are the uint8 HWC <-> float NCHW conversions of Uint8ImageModel:
# Transpose/Unsqueeze/Squeeze (permute, batch dim), Cast (uint8 <-> float), Div/Sub (x / 127.5 - 1),
# Add/Mul/Clip ((y + 1) * 127.5 + 0.5, clamped).
ALLOWED_OPS = {"Conv", "Relu", "Add", "Resize", "Tanh", "Cast", "Transpose", "Unsqueeze",
               "Squeeze", "Div", "Sub", "Mul", "Clip"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "nano.ckpt"
    generator = save_nano_checkpoint(path)
    first_bn = generator.stem[1]
    assert first_bn.running_var.sub(1).abs().max() > 0.1  # statistics that folding must carry
    return path


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for index, photo in enumerate(photo_batch()):
        Image.fromarray(photo).save(folder / f"photo{index}.png")
    return folder


@pytest.fixture(scope="module")
def reference(checkpoint):
    """The checkpoint's generator in PyTorch, behind the same uint8 conversions as the graph."""
    generator, _ = load_generator(checkpoint)
    return torch_runner(Uint8ImageModel(generator))


def export_cli(*argv) -> tuple[int, str, str]:
    """Run `stylecast-export onnx ARGV...` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["onnx", *map(str, argv)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def exported(checkpoint, photos_dir, tmp_path_factory):
    """Static, dynamic and --float-io exports, each alone in its own folder: name -> (path, out)."""
    variants = {"static": ["--size", "96x128"], "dynamic": [], "float": ["--float-io"]}
    results = {}
    for name, flags in variants.items():
        path = tmp_path_factory.mktemp(name) / "model.onnx"
        code, out, err = export_cli(checkpoint, "-o", path, "--images", photos_dir, *flags)
        assert code == 0, err
        results[name] = (path, out)
    return results


def graph(path) -> onnx.ModelProto:
    return onnx.load(str(path))


def dims(value_info) -> list[int | str]:
    return [d.dim_value or d.dim_param for d in value_info.type.tensor_type.shape.dim]


def op_types(path) -> set[str]:
    return {node.op_type for node in graph(path).graph.node}


def max_error(expected: np.ndarray, actual: np.ndarray) -> int:
    assert expected.shape == actual.shape and actual.dtype == np.uint8
    return int(np.abs(expected.astype(np.int16) - actual).max())


def crops(height: int, width: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(photo[:height, :width]) for photo in photo_batch()]


# --- What gets written -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["static", "dynamic", "float"])
def test_written_atomically_alone_in_its_folder(exported, name):
    path, _ = exported[name]
    assert [p.name for p in path.parent.iterdir()] == ["model.onnx"]  # no .tmp leftovers


def test_cli_prints_one_summary_line(exported):
    path, out = exported["static"]
    (line,) = out.strip().splitlines()
    # exported with --size 96x128 (height x width): 128 wide, 96 high
    assert str(path) in line and "128x96" in line and "'mosaic'" in line and "nano" in line
    assert "3 images" in line and "PSNR" in line


@pytest.mark.parametrize("name", ["static", "dynamic"])
def test_graph_passes_checker_with_uint8_hwc_io(exported, name):
    path, _ = exported[name]
    onnx.checker.check_model(str(path), full_check=True)
    model = graph(path)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (image,), (stylized,) = model.graph.input, model.graph.output
    for tensor in (image, stylized):
        assert tensor.type.tensor_type.elem_type == TensorProto.UINT8
        height, width, channels = dims(tensor)
        assert channels == 3
        if name == "static":
            assert (height, width) == STATIC
        else:
            assert isinstance(height, str) and isinstance(width, str) and height != width


@pytest.mark.parametrize("name", ["static", "dynamic"])
def test_contract_reads_back(exported, checkpoint, name):
    path, _ = exported[name]
    contract = read_onnx_contract(path)
    generator, _ = load_generator(checkpoint)
    assert (contract.style, contract.preset, contract.precision) == ("mosaic", "nano", "fp32")
    assert (contract.input.name, contract.output.name) == ("image", "stylized")
    assert (contract.input.layout, contract.input.dtype) == ("HWC", "uint8")
    assert contract.weights_sha256 == weights_sha256(generator)
    assert contract.stylecast_version
    if name == "static":
        assert (contract.height, contract.width) == STATIC and not contract.is_dynamic
    else:
        assert contract.is_dynamic and contract.height is None and contract.width is None


@pytest.mark.parametrize("name", ["static", "dynamic", "float"])
def test_batchnorm_folded_leaving_only_expected_ops(exported, name):
    ops = op_types(exported[name][0])
    print(f"{name}: {sorted(ops)}")
    assert "BatchNormalization" not in ops
    if name == "float":  # the bare generator: no pixel conversions in the graph
        assert ops <= {"Conv", "Relu", "Add", "Resize", "Tanh"}
    else:
        assert ops <= ALLOWED_OPS


def test_fold_batchnorm_keeps_outputs_without_any_batchnorm(checkpoint):
    # The TorchScript exporter folds eval-mode BatchNorm into Conv by itself, so the op check above
    # cannot tell whether fold_batchnorm worked; check it directly.
    generator, _ = load_generator(checkpoint)
    folded = onnx_export.fold_batchnorm(generator)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in generator.modules())  # a copy
    x = torch.tensor(photo_batch()[0][:96, :128]).permute(2, 0, 1)[None] / 127.5 - 1.0
    with torch.no_grad():
        torch.testing.assert_close(folded(x), generator(x), atol=1e-4, rtol=0)  # 0.013 levels


# --- What it computes --------------------------------------------------------------------------


def test_static_model_matches_pytorch_on_photos(exported, reference):
    from stylecast.export.verification import load_images

    engine = OnnxEngine(exported["static"][0])
    for photo in load_images(None, STATIC):  # scikit-image photos, scaled and cut to 96x128
        expected = reference(photo)
        assert expected.std() > 10  # a real image, not a saturated one: the check means something
        assert max_error(expected, engine(photo)) <= 1


@pytest.mark.parametrize("size", [(64, 96), (120, 160)])
def test_dynamic_model_runs_at_other_sizes(exported, reference, size):
    engine = OnnxEngine(exported["dynamic"][0])
    for photo in crops(*size):
        output = engine(photo)
        assert output.shape == (*size, 3)
        assert max_error(reference(photo), output) <= 1


def test_float_io_contract_and_output(exported, reference):
    path, _ = exported["float"]
    contract = read_onnx_contract(path)
    for spec in (contract.input, contract.output):
        assert (spec.layout, spec.dtype, spec.value_range) == ("NCHW", "float32", (-1.0, 1.0))
    (image,) = graph(path).graph.input
    assert image.type.tensor_type.elem_type == TensorProto.FLOAT
    assert dims(image)[:2] == [1, 3]
    engine = OnnxEngine(path)
    for photo in crops(120, 160):
        assert max_error(reference(photo), engine(photo)) <= 1  # same pixels as the uint8 model


def test_export_onnx_api_defaults_to_skimage_photos(checkpoint, tmp_path):
    result = onnx_export.export_onnx(checkpoint, tmp_path / "m.onnx", size=(64, 64))
    assert result.comparison.images == 4
    assert result.comparison.psnr_min >= onnx_export.MIN_PSNR_DB
    assert result.comparison.max_abs_error <= 1
    assert result.size_bytes == (tmp_path / "m.onnx").stat().st_size


# --- Refusals: one line, nothing written ---------------------------------------------------------


def assert_refused(code: int, out: str, err: str, exit_code: int, *names: str) -> None:
    assert code == exit_code, err
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("stylecast-export: error: ")
    for name in names:
        assert name in line


def test_refuses_a_graph_that_disagrees_with_pytorch(checkpoint, photos_dir, tmp_path,
                                                     monkeypatch):
    real_fold = onnx_export.fold_batchnorm

    def fold_and_perturb(generator):
        folded = real_fold(generator)
        with torch.no_grad():
            folded.head[0].weight.add_(0.002)  # small, yet far outside the tolerance
        return folded

    monkeypatch.setattr(onnx_export, "fold_batchnorm", fold_and_perturb)
    output = tmp_path / "out" / "model.onnx"
    output.parent.mkdir()
    code, out, err = export_cli(checkpoint, "-o", output, "--images", photos_dir)
    print(err.strip())
    assert_refused(code, out, err, EX_FAILURE, str(output), "not written", "PSNR")
    assert list(output.parent.iterdir()) == []


def garbage_file(folder):
    path = folder / "garbage.ckpt"
    path.write_bytes(b"\x00not a checkpoint" * 64)
    return path


def plain_state_dict(folder):
    """What pytorch-CycleGAN-and-pix2pix saves (latest_net_G_A.pth): a bare state dict."""
    from stylecast.training.teachers.cyclegan import ResnetGenerator

    path = folder / "latest_net_G_A.pth"
    torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), path)
    return path


BAD_INPUTS = {
    # case: (makes the checkpoint argument in a folder, or None for the good one; extra flags;
    #        what the error line must name, with {empty} the path of an empty folder)
    "missing checkpoint": (lambda folder: folder / "absent.ckpt", [], ["absent.ckpt", "no such"]),
    "garbage file": (garbage_file, [], ["garbage.ckpt", "not a PyTorch checkpoint"]),
    "plain state dict": (plain_state_dict, [], ["latest_net_G_A.pth",
                                                "not a stylecast checkpoint"]),
    "size not a multiple of 4": (None, ["--size", "30x40"], ["30x40", "multiples of 4"]),
    "empty images folder": (None, ["--images", "{empty}"], ["{empty}", "no "]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_78_with_one_line_and_writes_nothing(case, checkpoint, tmp_path):
    make, flags, names = BAD_INPUTS[case]
    source = make(tmp_path) if make else checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    flags = [flag.format(empty=empty) for flag in flags]
    names = [name.format(empty=empty) for name in names]
    output = tmp_path / "out" / "model.onnx"
    output.parent.mkdir()
    code, out, err = export_cli(source, "-o", output, *flags)
    print(err.strip())
    assert_refused(code, out, err, EX_CONFIG, *names)
    assert list(output.parent.iterdir()) == []
