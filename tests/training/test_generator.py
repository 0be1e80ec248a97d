"""The compact generator family: shapes, ranges, exportable ops and computed cost figures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from stylecast.core.errors import ConfigError
from stylecast.training.complexity import count_macs, count_params, describe_presets
from stylecast.training.generator import CompactGenerator, GeneratorConfig
from stylecast.training.imaging import image_to_tensor, tensor_to_image
from stylecast.training.presets import PRESETS, build_generator, preset_config

PRESET_NAMES = list(PRESETS)


@pytest.fixture(scope="module", params=PRESET_NAMES)
def trained_like(request) -> CompactGenerator:
    """A preset with non-trivial BatchNorm statistics, as a trained model would have."""
    torch.manual_seed(0)
    model = build_generator(request.param)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("size", [(256, 256), (480, 640)])
def test_forward_shape_and_range_on_a_photo(trained_like, photo_rgb, size):
    height, width = size
    x = image_to_tensor(np.ascontiguousarray(photo_rgb[:height, :width]))
    with torch.no_grad():
        y = trained_like(x)
    assert y.shape == (1, 3, height, width)
    assert torch.isfinite(y).all()
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert y.std() > 0  # not a constant image


@pytest.mark.parametrize("preset", ["nano", "swift"])
@pytest.mark.parametrize("size", [(4, 4), (68, 92), (100, 4)])
def test_any_multiple_of_four_works(preset, size):
    model = build_generator(preset).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, *size)).shape == (2, 3, *size)


def _conv_output_sizes(model: nn.Module, height: int, width: int) -> list[tuple[int, int]]:
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, height, width))
    for hook in hooks:
        hook.remove()
    return sizes


def test_subpixel_tail_does_no_convolution_at_full_resolution():
    swift = _conv_output_sizes(build_generator("swift"), 64, 96)
    nano = _conv_output_sizes(build_generator("nano"), 64, 96)
    assert max(swift) == (32, 48)
    assert (64, 96) in nano  # the full tail does: the comparison is not empty


def test_subpixel_head_puts_each_output_pixel_on_its_own_channel():
    """DepthToSpace: the 12 head channels become the 4 sub-pixels of each 2x2 output block."""
    model = build_generator("swift").eval()
    head_conv, shuffle = model.head[0], model.head[1]
    features = torch.zeros(1, head_conv.out_channels, 1, 1)
    features[0, 5] = 1.0  # channel 5 = colour 1, sub-pixel 1 (row 0, column 1)
    block = shuffle(features)[0]
    assert block.shape == (3, 2, 2)
    assert block[1, 0, 1] == 1.0 and block.sum() == 1.0


@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 31), (1, 4, 32, 32), (3, 32, 32)])
def test_bad_input_shape_is_named(shape):
    with pytest.raises(ValueError, match="generator input"):
        build_generator("nano")(torch.zeros(shape))


def test_training_step_reaches_every_parameter():
    model = build_generator("nano").train()
    model(torch.rand(2, 3, 32, 32) * 2 - 1).abs().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_blocks_start_as_identity():
    model = build_generator("small").eval()
    x = torch.randn(1, 4 * model.config.channels, 8, 8)
    for block in model.body:
        assert torch.equal(block(x), x)


def test_no_transposed_conv_or_instance_norm_modules():
    banned = (nn.ConvTranspose2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)
    for name in PRESET_NAMES:
        assert not [m for m in build_generator(name).modules() if isinstance(m, banned)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice
@pytest.mark.parametrize("name", ["nano", "small", "swift"])
def test_exported_graph_has_only_fast_ops_and_matches_pytorch(name, photo_rgb):
    """Exported in eval mode, BatchNorm folds away and only TensorRT/ORT-friendly ops remain."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    model = build_generator(name).eval()
    x = image_to_tensor(np.ascontiguousarray(photo_rgb[:256, :256]))
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, opset_version=17, dynamo=False,
                      input_names=["x"], output_names=["y"])
    graph = onnx.load_from_string(buffer.getvalue()).graph
    ops = {node.op_type for node in graph.node}
    assert ops <= {"Conv", "Relu", "Add", "Resize", "Tanh", "Constant", "Identity",
                   "DepthToSpace"}
    assert ("DepthToSpace" in ops) == (name == "swift")
    assert "BatchNormalization" not in ops
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (onnx_y,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        torch_y = model(x).numpy()
    assert np.abs(onnx_y - torch_y).max() < 1e-4


def _macs_by_hand(model: nn.Module, height: int, width: int) -> int:
    """An independent count: each conv costs out_elements * in_channels/groups * kh * kw."""
    total = 0

    def count(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, height, width))
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_macs_are_counted_from_the_network(name):
    model = build_generator(name)
    assert count_macs(model, 256, 256) == _macs_by_hand(model, 256, 256)
    # Every layer is convolutional, so cost scales exactly with the pixel count.
    assert count_macs(model, 480, 640) * 256 * 256 == count_macs(model, 256, 256) * 480 * 640
    assert count_params(model) == sum(p.numel() for p in model.parameters())


def test_presets_are_ordered_by_cost_and_within_budget():
    rows = {row.name: row for row in describe_presets()}
    gmacs = [rows[name].gmacs for name in PRESET_NAMES]
    assert gmacs == sorted(gmacs) and len(set(gmacs)) == len(gmacs)
    full_tail = [name for name in PRESET_NAMES if PRESETS[name].tail == "full"]
    params = [rows[name].params for name in full_tail]
    assert params == sorted(params)
    assert {"swift", "nano", "small", "base"} <= set(rows)
    assert rows["swift"].gmacs <= rows["nano"].gmacs <= 0.6
    assert rows["small"].gmacs <= 2.0


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"'tiny'.*nano, small, base"):
        preset_config("tiny")


@pytest.mark.parametrize("field", ["channels", "blocks", "expansion"])
def test_config_rejects_nonpositive_sizes(field):
    values = {"channels": 8, "blocks": 2, "expansion": 2, field: 0}
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**values)


def test_config_rejects_an_unknown_tail():
    with pytest.raises(ValueError, match="tail must be one of full, subpixel, got 'wide'"):
        GeneratorConfig(channels=8, blocks=2, expansion=2, tail="wide")


def test_pixel_convention_round_trips_a_photo(photo_rgb):
    x = image_to_tensor(photo_rgb)
    assert x.shape == (1, 3, 480, 640) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(tensor_to_image(x), photo_rgb)
