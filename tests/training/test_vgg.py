"""VGG-16 features from a user-supplied torchvision state dict, and the perceptual/style losses.

Nothing is downloaded: the weights are random, made here in torchvision's key layout.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

from stylecast.core.errors import InputError
from stylecast.training.imaging import image_to_tensor
from stylecast.training.vgg import PerceptualLoss, VGG16Features, gram_matrix, load_vgg16

# torchvision's vgg16 ("D"), written out independently of the module under test.
CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
CLASSIFIER_SHAPES = {
    "classifier.0.weight": (4096, 512 * 7 * 7), "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def feature_shapes() -> dict[str, tuple[int, ...]]:
    """features.N.{weight,bias} -> shape, from the layer config: conv+ReLU take 2 slots, M one."""
    shapes, index, c_in = {}, 0, 3
    for item in CONFIG:
        if item == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (item, c_in, 3, 3)
        shapes[f"features.{index}.bias"] = (item,)
        index, c_in = index + 2, item
    assert index == 31
    return shapes


def torchvision_state(seed: int) -> dict[str, torch.Tensor]:
    """A random vgg16 state dict as torchvision saves it, classifier included.

    The classifier (~120M numbers) is never used, so it is stored as stride-0 views of a single
    zero: the right shapes in a file of a few bytes.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in feature_shapes().items():
        fan_out = shape[0] * 9
        scale = math.sqrt(2 / fan_out) if key.endswith("weight") else 0.01
        state[key] = torch.randn(shape, generator=generator) * scale
    for key, shape in CLASSIFIER_SHAPES.items():
        state[key] = torch.zeros(1).expand(shape)
    return state


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> tuple:
    state = torchvision_state(seed=0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def vgg(weights_file) -> VGG16Features:
    return load_vgg16(weights_file[0])


def photo(name: str, size: int, top: int = 0, left: int = 0) -> torch.Tensor:
    """A crop of a scikit-image photo (gray ones made RGB) as (1, 3, size, size) in [-1, 1]."""
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image_to_tensor(np.ascontiguousarray(image[top : top + size, left : left + size]))


# --- VGG16Features and load_vgg16 -----------------------------------------------------------


def test_state_dict_keys_and_shapes_are_torchvisions():
    state = VGG16Features().state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == feature_shapes()


def test_load_round_trips_torchvision_weights_and_freezes(weights_file, vgg):
    _, state = weights_file
    loaded = vgg.state_dict()
    for key in feature_shapes():
        assert torch.equal(loaded[key], state[key]), key
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())


def test_load_accepts_a_state_dict_wrapper(weights_file, tmp_path):
    _, state = weights_file
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": state, "epoch": 90}, path)
    model = load_vgg16(path)
    assert torch.equal(model.features[28].bias, state["features.28.bias"])


def test_missing_file_is_an_input_error_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "vgg16.pth"
    with pytest.raises(InputError, match="not found") as err:
        load_vgg16(path)
    assert str(path) in str(err.value)


def test_garbage_file_is_an_input_error_on_one_line(tmp_path):
    path = tmp_path / "vgg16.pth"
    path.write_bytes(b"this is not a pytorch file\n" * 10)
    with pytest.raises(InputError) as err:
        load_vgg16(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only" not in message  # never advise loading untrusted pickles


def test_empty_file_and_a_non_dict_are_input_errors(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        load_vgg16(empty)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(InputError, match="state dict"):
        load_vgg16(listed)


def test_missing_key_is_named(weights_file, tmp_path):
    _, state = weights_file
    broken = {key: value for key, value in state.items() if key != "features.28.bias"}
    path = tmp_path / "cut.pth"
    torch.save(broken, path)
    with pytest.raises(InputError) as err:
        load_vgg16(path)
    message = str(err.value)
    assert str(path) in message and "'features.28.bias'" in message and "\n" not in message


def test_wrong_shape_is_named(weights_file, tmp_path):
    _, state = weights_file
    path = tmp_path / "gray.pth"
    torch.save({**state, "features.0.weight": torch.zeros(64, 1, 3, 3)}, path)
    with pytest.raises(InputError, match=r"'features.0.weight' has shape \(64, 1, 3, 3\)"):
        load_vgg16(path)


def test_a_batchnorm_variant_is_refused(weights_file, tmp_path):
    _, state = weights_file
    path = tmp_path / "bn.pth"
    torch.save({**state, "features.1.running_mean": torch.zeros(64)}, path)
    with pytest.raises(InputError, match=r"unexpected key 'features\.1\.running_mean'"):
        load_vgg16(path)


def test_forward_returns_the_named_relus_at_their_resolutions(vgg):
    x = photo("astronaut", 64, top=40, left=200)
    with torch.no_grad():
        out = vgg(x, ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"])
    shapes = {name: tuple(t.shape) for name, t in out.items()}
    assert shapes == {
        "relu1_2": (1, 64, 64, 64), "relu2_2": (1, 128, 32, 32), "relu3_3": (1, 256, 16, 16),
        "relu4_3": (1, 512, 8, 8), "relu5_3": (1, 512, 4, 4),
    }
    assert all((t >= 0).all() for t in out.values())


def test_forward_stops_at_the_deepest_requested_layer(vgg):
    calls = []
    hooks = [vgg.features[i].register_forward_hook(lambda *_, i=i: calls.append(i)) for i in (8, 9)]
    try:
        with torch.no_grad():
            vgg(photo("coffee", 32), ["relu2_2", "relu1_2"])
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [8]


def test_input_is_converted_to_imagenet_normalization(vgg):
    seen = []
    hook = vgg.features[0].register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    x = photo("chelsea", 32, top=100, left=100)
    try:
        with torch.no_grad():
            vgg(x, ["relu1_2"])
    finally:
        hook.remove()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[0], ((x + 1) / 2 - mean) / std)


def test_unknown_layer_is_refused(vgg):
    with pytest.raises(ValueError, match="relu6"):
        vgg(photo("coffee", 32), ["relu6"])


# --- gram_matrix ----------------------------------------------------------------------------


def test_gram_matrix_on_known_features():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / (2 * 1 * 2)
    torch.testing.assert_close(gram_matrix(features), expected)


def test_gram_matrix_ignores_where_things_are():
    features = torch.randn(2, 8, 6, 10, generator=torch.Generator().manual_seed(0))
    gram = gram_matrix(features)
    assert gram.shape == (2, 8, 8)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    torch.testing.assert_close(gram, gram_matrix(features.flip(-1)))
    shuffled = features.flatten(2)[..., torch.randperm(60)].view(2, 8, 6, 10)
    torch.testing.assert_close(gram, gram_matrix(shuffled))


def test_gram_matrix_of_half_precision_features_does_not_overflow():
    features = torch.full((1, 2, 64, 64), 300.0, dtype=torch.float16)  # 4096 * 300^2 > 65504
    gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, torch.full((1, 2, 2), 300.0**2 / 2))


# --- PerceptualLoss -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror_vgg(weights_file) -> VGG16Features:
    """VGG with left-right symmetric kernels: its features of a mirrored image are mirrored.

    (Every conv, ReLU and the 2x2 pools on even widths then commute with a horizontal flip.)
    """
    model = load_vgg16(weights_file[0])
    for module in model.features:
        if isinstance(module, nn.Conv2d):
            module.weight.copy_((module.weight + module.weight.flip(-1)) / 2)
    return model


def test_content_loss_is_zero_only_for_the_same_image(vgg):
    loss = PerceptualLoss(vgg)
    x = photo("astronaut", 64, top=40, left=200)
    assert loss.content_loss(x, x.clone()).item() == 0
    assert loss.content_loss(x + 0.05, x).item() > 0


def test_losses_train_the_output_not_the_vgg(vgg):
    loss = PerceptualLoss(vgg, content_layers=("relu2_2",), style_layers=("relu1_2", "relu2_2"))
    output = photo("astronaut", 32, top=40, left=200).requires_grad_(True)
    target = photo("coffee", 32)
    (loss.content_loss(output, target) + loss.style_loss(output, target)).backward()
    assert output.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_style_loss_is_blind_to_a_mirror_but_content_loss_is_not(mirror_vgg):
    loss = PerceptualLoss(mirror_vgg)
    x = photo("chelsea", 64, top=80, left=180)
    mirrored = x.flip(-1)
    assert loss.style_loss(mirrored, x).item() < 1e-6 * loss.style_loss(mirrored, -x).item()
    assert loss.content_loss(mirrored, x).item() > 0.01 * loss.content_loss(-x, x).item()


def test_style_batch_of_another_size_uses_its_mean_gram(vgg):
    loss = PerceptualLoss(vgg, style_layers=("relu1_2", "relu2_2"))
    outputs = torch.cat([photo("astronaut", 32, top=40, left=200), photo("coffee", 32)])
    styles = torch.cat([photo("brick", 32), photo("grass", 32), photo("brick", 32, 100, 100)])
    value = loss.style_loss(outputs, styles)
    with torch.no_grad():
        out_feats, style_feats = vgg(outputs, loss.style_layers), vgg(styles, loss.style_layers)
    expected = sum(
        ((gram_matrix(out_feats[n]) - gram_matrix(style_feats[n]).mean(0)) ** 2).mean()
        for n in loss.style_layers
    )
    torch.testing.assert_close(value, expected)
    duplicated = loss.style_loss(outputs, torch.cat([styles, styles]))
    torch.testing.assert_close(duplicated, value)


def test_style_loss_prefers_the_same_texture(vgg, mirror_vgg):
    """Two crops of brick are closer in style than brick and grass of the same mean and contrast.

    With random weights this still holds: a Gram matrix of random ReLU filters is a second-
    moment statistic of the image's local patches, which two crops of one stationary texture
    share (Ustyuzhaninov et al. 2017 synthesise textures from random-weight networks), so the
    check does not depend on ImageNet training. Matching grass's mean and std to the brick's
    leaves only texture to tell them apart. Checked on two different random networks.
    """
    brick_a, brick_b = photo("brick", 64, 0, 0), photo("brick", 64, 300, 250)
    grass = photo("grass", 64, 200, 200)
    grass = (grass - grass.mean()) / grass.std() * brick_a.std() + brick_a.mean()
    for network in (vgg, mirror_vgg):
        loss = PerceptualLoss(network)
        with torch.no_grad():
            assert loss.style_loss(brick_a, brick_b) < 0.25 * loss.style_loss(brick_a, grass)
