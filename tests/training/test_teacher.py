"""Torch teachers: CycleGAN ResnetGenerator state dicts in that code's own key layout, and
stylecast checkpoints (teachers/checkpoint.py, teachers/cyclegan.py).

The state dicts here are built from the layout rules of pytorch-CycleGAN-and-pix2pix's
`models/networks.py` (ResnetGenerator, ResnetBlock), written out independently of
stylecast.training.teachers.cyclegan, so a drift in our module structure shows up as a key
mismatch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from stylecast.core.errors import InputError
from stylecast.training.checkpoint import CheckpointInfo, save_checkpoint
from stylecast.training.generator import CompactGenerator
from stylecast.training.presets import build_generator, preset_config
from stylecast.training.teachers.cyclegan import ResnetGenerator, describe_state_dict
from stylecast.training.teachers.loader import load_teacher

CYCLEGAN_RESNET9_PARAMS = 11_378_179  # 64-ngf, 9-block, InstanceNorm: CycleGAN's default G


def cyclegan_layout(
    ngf: int = 64, n_blocks: int = 9, norm: str = "instance", dropout: bool = False,
    legacy: bool = False, input_nc: int = 3, output_nc: int = 3,
) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) in the order that code's `net.cpu().state_dict()` lists them.

    `model` is one Sequential: pad 0, conv 1, norm 2, ReLU 3, then (conv, norm, ReLU) at 4-6 and
    7-9, ResnetBlocks from 10, then (ConvTranspose, norm, ReLU) twice, pad, conv, Tanh. Inside a
    block: pad 0, conv 1, norm 2, ReLU 3, [Dropout 4], pad, conv, norm. Convs before a norm have
    a bias only with InstanceNorm; BatchNorm is affine with running stats. `legacy`: the
    running stats old PyTorch / old versions of that code saved for InstanceNorm layers too.
    """
    bias = norm == "instance"
    entries: list[tuple[str, tuple[int, ...]]] = []

    def conv(name: str, shape: tuple[int, ...], with_bias: bool = bias) -> None:
        entries.append((f"{name}.weight", shape))
        if with_bias:
            entries.append((f"{name}.bias", shape[:1]))

    def transposed(name: str, c_in: int, c_out: int) -> None:  # weight is (in, out, k, k)
        entries.append((f"{name}.weight", (c_in, c_out, 3, 3)))
        if bias:
            entries.append((f"{name}.bias", (c_out,)))

    def norm_layer(name: str, channels: int) -> None:
        if norm == "batch":
            entries.extend([(f"{name}.weight", (channels,)), (f"{name}.bias", (channels,))])
        if norm == "batch" or legacy:
            entries.extend([(f"{name}.running_mean", (channels,)),
                            (f"{name}.running_var", (channels,)),
                            (f"{name}.num_batches_tracked", ())])

    conv("model.1", (ngf, input_nc, 7, 7))
    norm_layer("model.2", ngf)
    conv("model.4", (2 * ngf, ngf, 3, 3))
    norm_layer("model.5", 2 * ngf)
    conv("model.7", (4 * ngf, 2 * ngf, 3, 3))
    norm_layer("model.8", 4 * ngf)
    second = 6 if dropout else 5
    for block in range(10, 10 + n_blocks):
        conv(f"model.{block}.conv_block.1", (4 * ngf, 4 * ngf, 3, 3))
        norm_layer(f"model.{block}.conv_block.2", 4 * ngf)
        conv(f"model.{block}.conv_block.{second}", (4 * ngf, 4 * ngf, 3, 3))
        norm_layer(f"model.{block}.conv_block.{second + 1}", 4 * ngf)
    up = 10 + n_blocks
    transposed(f"model.{up}", 4 * ngf, 2 * ngf)
    norm_layer(f"model.{up + 1}", 2 * ngf)
    transposed(f"model.{up + 3}", 2 * ngf, ngf)
    norm_layer(f"model.{up + 4}", ngf)
    conv(f"model.{up + 7}", (output_nc, ngf, 7, 7), with_bias=True)
    return entries


def cyclegan_state(seed: int = 0, legacy: bool = False, **layout) -> dict[str, torch.Tensor]:
    """Random tensors in that layout, scaled so the output is neither constant nor saturated.

    `legacy` adds InstanceNorm running stats (random, so using them would change the output)
    without changing the other tensors.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {key: _random(key, shape, generator) for key, shape in cyclegan_layout(**layout)}
    if not legacy:
        return state
    stats = torch.Generator().manual_seed(seed + 1)
    return {key: state[key] if key in state else _random(key, shape, stats)
            for key, shape in cyclegan_layout(legacy=True, **layout)}


def _random(key: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.tensor(100)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith("running_mean"):
        return torch.randn(shape, generator=generator) * 0.1
    if len(shape) == 4:  # unit-variance outputs for unit-variance inputs
        return torch.randn(shape, generator=generator) / (shape[1] * shape[2] * shape[3]) ** 0.5
    return torch.randn(shape, generator=generator) * 0.1 + (1.0 if key.endswith("weight") else 0)


def reference(state: dict[str, torch.Tensor], **config) -> ResnetGenerator:
    model = ResnetGenerator(**config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def loaded(path: Path) -> tuple[nn.Module, str, str | None]:
    """The generator a torch teacher renders with, its description and its style."""
    teacher = load_teacher(path)
    return teacher.feature_module(), teacher.description, teacher.style


def save(tmp_path: Path, name: str, payload: object) -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


def test_default_keys_and_size_match_cyclegan_resnet_9blocks():
    model = ResnetGenerator()
    expected = cyclegan_layout()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == expected
    keys = [key for key, _ in expected]
    # Spot checks written out by hand, as that code's ResNet-9 saves them.
    assert keys[:4] == ["model.1.weight", "model.1.bias", "model.4.weight", "model.4.bias"]
    for key in ("model.7.weight", "model.10.conv_block.1.weight", "model.10.conv_block.5.weight",
                "model.18.conv_block.5.bias", "model.19.weight", "model.22.weight"):
        assert key in keys
    assert keys[-2:] == ["model.26.weight", "model.26.bias"]
    assert len(keys) == 48  # 3 + 9 x 2 + 2 + 1 convolutions, each weight + bias
    assert isinstance(model.model[19], nn.ConvTranspose2d)
    assert sum(p.numel() for p in model.parameters()) == CYCLEGAN_RESNET9_PARAMS


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("dropout", [False, True])
def test_variant_keys_match_the_layout(norm, dropout):
    model = ResnetGenerator(ngf=8, n_blocks=3, norm=norm, use_dropout=dropout)
    expected = cyclegan_layout(ngf=8, n_blocks=3, norm=norm, dropout=dropout)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == expected


VARIANTS = {  # name: (layout and config, legacy InstanceNorm stats in the file)
    "instance": ({}, False),
    "legacy-instance-stats": ({}, True),
    "dropout": ({"use_dropout": True}, False),
    "legacy-dropout": ({"use_dropout": True}, True),
    "batch": ({"norm": "batch"}, False),
    "batch-dropout": ({"norm": "batch", "use_dropout": True}, False),
    "no-norm": ({"norm": "none"}, False),  # that code's --norm none: Identity, no conv biases
}


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cyclegan_state_dict_loads_and_matches_reference(tmp_path, variant, prefix):
    options, legacy = VARIANTS[variant]
    config = {"ngf": 8, "n_blocks": 3, **options}
    layout = {"ngf": 8, "n_blocks": 3, "norm": config.get("norm", "instance"),
              "dropout": config.get("use_dropout", False)}
    state = cyclegan_state(**layout, legacy=legacy)
    path = save(tmp_path, "latest_net_G_A.pth", {prefix + k: v for k, v in state.items()})

    teacher, description, style = loaded(path)
    assert style is None  # a CycleGAN state dict carries no style name

    expected_model = reference(cyclegan_state(**layout), **config)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        got, want = teacher(x), expected_model(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert got.std() > 0.05 and got.abs().max() < 1  # a real image, not a constant or saturated
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    norm = layout["norm"]
    assert description.startswith(f"CycleGAN ResnetGenerator ngf=8 n_blocks=3 norm={norm}")
    assert ("dropout" in description) == layout["dropout"]
    assert "\n" not in description


def test_describe_state_dict_reads_the_layout():
    state = cyclegan_state(ngf=8, n_blocks=4, norm="batch", dropout=True, input_nc=1, output_nc=2)
    assert describe_state_dict({"module." + k: v for k, v in state.items()}) == {
        "input_nc": 1, "output_nc": 2, "ngf": 8, "n_blocks": 4, "norm": "batch",
        "use_dropout": True,
    }
    legacy = cyclegan_state(ngf=4, n_blocks=6, legacy=True)
    assert describe_state_dict(legacy) == {
        "input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 6, "norm": "instance",
        "use_dropout": False,
    }


def test_full_size_resnet9_file_loads(tmp_path):
    path = save(tmp_path, "latest_net_G_A.pth", cyclegan_state())
    teacher, description, _style = loaded(path)
    assert description == "CycleGAN ResnetGenerator ngf=64 n_blocks=9 norm=instance"
    with torch.no_grad():
        assert teacher(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("size", [(64, 64), (256, 256), (64, 96)])
def test_output_shape(size):
    model = ResnetGenerator(ngf=8, n_blocks=2).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, *size) * 2 - 1)
    assert y.shape == (1, 3, *size)
    assert y.min() >= -1 and y.max() <= 1


def test_stylecast_checkpoint_loads_as_teacher(tmp_path):
    torch.manual_seed(0)
    generator = build_generator("base").eval()
    info = CheckpointInfo(mode="fit", step=1200, preset="base",
                          generator_config=preset_config("base"), style="mosaic")
    path = tmp_path / "base.ckpt"
    save_checkpoint(path, info=info, generator=generator, train_state={}, options={})

    teacher, description, style = loaded(path)

    assert style == "mosaic"
    assert isinstance(teacher, CompactGenerator) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert "base" in description and "mosaic" in description and "\n" not in description
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), generator(x))
    torch.testing.assert_close(load_teacher(path).render(x), generator(x))


def test_torch_teacher_renders_any_size_and_keys_its_file(tmp_path):
    path = save(tmp_path, "latest_net_G_A.pth", cyclegan_state(ngf=8, n_blocks=3))
    teacher = load_teacher(path)
    x = torch.rand(2, 3, 30, 45) * 2 - 1  # not multiples of 4: padded inside, cropped back
    y = teacher.render(x)
    assert y.shape == x.shape and not y.requires_grad
    padded = torch.nn.functional.pad(x, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(y, teacher.feature_module()(padded)[..., :30, :45])
    assert load_teacher(path).cache_key() == teacher.cache_key()
    other = save(tmp_path, "other.pth", cyclegan_state(seed=1, ngf=8, n_blocks=3))
    assert load_teacher(other).cache_key() != teacher.cache_key()


def test_a_generator_that_is_not_rgb_to_rgb_is_refused(tmp_path):
    path = save(tmp_path, "gray.pth", cyclegan_state(ngf=8, n_blocks=3, input_nc=1))
    with pytest.raises(InputError, match=r"gray\.pth: .* maps 1 to 3 channels"):
        load_teacher(path)


def wrong_shape_state() -> dict[str, torch.Tensor]:
    state = cyclegan_state(ngf=8, n_blocks=3)
    state["model.10.conv_block.5.weight"] = torch.zeros(32, 32, 1, 1)
    return state


def missing_key_state() -> dict[str, torch.Tensor]:
    state = cyclegan_state(ngf=8, n_blocks=3)
    del state["model.4.bias"]
    return state


BAD_FILES = {
    "garbage bytes": (b"\x00not a pickle at all", "not a readable teacher file"),
    "unrelated keys": ({"encoder.weight": torch.zeros(3)}, "no 'model.1.weight'"),
    "a list": ([torch.zeros(3)], "it holds a list"),
    "non-tensor value": ({"model.1.weight": "x"}, "holds a str"),
    "no blocks": ({"model.1.weight": torch.zeros(8, 3, 7, 7)}, "no residual blocks"),
    "wrong shape": (wrong_shape_state(), "model.10.conv_block.5.weight is (32, 32, 1, 1)"),
    "missing key": (missing_key_state(), "missing model.4.bias"),
    "unet": ({"model.model.0.weight": torch.zeros(64, 3, 4, 4)}, "no 'model.1.weight'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_one_line_input_errors(tmp_path, case):
    payload, problem = BAD_FILES[case]
    path = tmp_path / "teacher.pth"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    with pytest.raises(InputError) as caught:
        load_teacher(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert "\n" not in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"teacher\.pth: no such teacher file$"):
        load_teacher(tmp_path / "teacher.pth")


def test_bad_stylecast_checkpoint_is_named(tmp_path):
    path = save(tmp_path, "teacher.ckpt", {"format": "stylecast-checkpoint", "version": 99})
    with pytest.raises(InputError, match=r"teacher\.ckpt: checkpoint version 99"):
        load_teacher(path)


def test_feature_layers_are_the_documented_taps():
    model = ResnetGenerator(ngf=8, n_blocks=5)
    down_end, middle, last, up_relu = model.feature_layers()
    assert down_end is model.model[9] and isinstance(down_end, nn.ReLU)
    assert isinstance(model.model[7], nn.Conv2d) and model.model[7].stride == (2, 2)
    assert middle is model.model[10 + 5 // 2 - 1] and last is model.model[14]
    assert up_relu is model.model[17] and isinstance(model.model[15], nn.ConvTranspose2d)
