"""Distillation pieces: feature capture by hooks, 1x1-conv feature distillation, output L1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from stylecast.training.distill import (
    FeatureDistiller,
    capture_features,
    distillation_loss,
    feature_channels,
)
from stylecast.training.imaging import image_to_tensor
from stylecast.training.presets import build_generator
from stylecast.training.teachers.cyclegan import ResnetGenerator


def student() -> nn.Module:
    torch.manual_seed(0)
    return build_generator("nano")  # 16 channels: taps of 64, 64, 64, 32


def teacher() -> ResnetGenerator:
    torch.manual_seed(1)
    model = ResnetGenerator(ngf=8, n_blocks=3).eval()  # taps of 32, 32, 32, 16
    return model.requires_grad_(False)


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def photo_crops(size: int = 64) -> torch.Tensor:
    """A crop from the middle of each of three real photos, (3, 3, size, size) in [-1, 1]."""
    from skimage import data

    crops = []
    for image in (data.astronaut(), data.chelsea(), data.coffee()):
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crops.append(image_to_tensor(np.ascontiguousarray(image[top:top + size, left:left + size])))
    return torch.cat(crops)


@pytest.mark.parametrize(
    ("make", "channels"), [(student, [64, 64, 64, 32]), (teacher, [32, 32, 32, 16])]
)
def test_capture_features_count_and_shapes(make, channels):
    model = make()
    with capture_features(model, model.feature_layers()) as features:
        model(torch.zeros(2, 3, 64, 64))
        shapes = [tuple(f.shape) for f in features]
    sizes = [16, 16, 16, 32]  # 1/4, 1/4, 1/4, 1/2 of 64
    assert shapes == [(2, c, s, s) for c, s in zip(channels, sizes, strict=True)]
    assert hooks(model) == 0


def test_student_and_teacher_taps_share_resolutions():
    s, t = student(), teacher()
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    with capture_features(s, s.feature_layers()) as s_feats, \
            capture_features(t, t.feature_layers()) as t_feats:
        s(x)
        t(x)
    assert [f.shape[-2:] for f in s_feats] == [f.shape[-2:] for f in t_feats]
    assert [tuple(f.shape[-2:]) for f in t_feats] == [(16, 24)] * 3 + [(32, 48)]


def test_features_are_those_of_the_latest_forward_in_layer_order():
    model = teacher()
    layers = model.feature_layers()
    first, second = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad(), capture_features(model, layers[::-1]) as features:
        model(first)
        model(second)
        assert len(features) == 4
        captured = [f.clone() for f in features]
    # Recompute the tap outputs step by step: ReLU at 9, block 10, block 12, ReLU at 15.
    with torch.no_grad():
        x, outputs = second, {}
        for index, module in enumerate(model.model):
            x = module(x)
            outputs[index] = x.clone()
    expected = [outputs[15], outputs[12], outputs[10], outputs[9]]  # reversed, as given
    for got, want in zip(captured, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_hooks_are_removed_even_on_error():
    model = student()
    with pytest.raises(RuntimeError, match="boom"), \
            capture_features(model, model.feature_layers()):
        model(torch.zeros(1, 3, 32, 32))
        raise RuntimeError("boom")
    assert hooks(model) == 0 and not model._forward_hooks


def test_a_layer_outside_the_model_is_refused():
    model = student()
    with pytest.raises(ValueError, match=r"feature layer 1 \(ReLU\) is not part of the model"), \
            capture_features(model, [model.down, nn.ReLU()]):
        pass
    assert hooks(model) == 0


def test_feature_channels_restores_each_modules_mode():
    model = student().train()
    model.body[0].eval()  # a frozen block must stay frozen
    running = model.stem[1].running_mean.clone()
    assert feature_channels(model) == [64, 64, 64, 32]
    assert model.training and not model.body[0].training and model.body[1].training
    torch.testing.assert_close(model.stem[1].running_mean, running)  # no BN update
    assert hooks(model) == 0
    assert feature_channels(teacher(), 32, 48) == [32, 32, 32, 16]
    assert feature_channels(ResnetGenerator(input_nc=1, ngf=4, n_blocks=2)) == [16, 16, 16, 8]


def test_distiller_gradients_reach_adapters_and_student_not_teacher():
    s, t = student().train(), teacher()
    t.requires_grad_(True)  # even a teacher with gradients on gets none: its features are detached
    distiller = FeatureDistiller(feature_channels(s), feature_channels(t))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with capture_features(s, s.feature_layers()) as s_feats, \
            capture_features(t, t.feature_layers()) as t_feats:
        s(x)
        t(x)
    loss = distiller(s_feats, t_feats)
    loss.backward()
    assert loss.dim() == 0 and loss > 0
    assert all(a.weight.grad is not None and a.weight.grad.abs().sum() > 0
               for a in distiller.adapters)
    assert s.stem[0].weight.grad.abs().sum() > 0  # through the taps alone: no output loss
    assert s.head[0].weight.grad is None  # the head comes after every tap
    assert all(p.grad is None for p in t.parameters())


def test_distiller_names_the_tap_that_does_not_fit():
    distiller = FeatureDistiller([4, 4], [8, 8])
    good = [torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 16, 16)]
    teacher_feats = [torch.zeros(1, 8, 8, 8), torch.zeros(1, 8, 8, 8)]
    with pytest.raises(ValueError, match=r"tap 1: student \(1, 4, 16, 16\).*\(1, 8, 8, 8\)"):
        distiller(good, teacher_feats)
    with pytest.raises(ValueError, match="expected 2"):
        distiller(good[:1], teacher_feats[:1])
    with pytest.raises(ValueError, match="same number"):
        FeatureDistiller([4, 4], [8])


def test_distillation_loss_is_l1_to_a_detached_target():
    a = torch.tensor([[0.5, -0.5]], requires_grad=True)
    b = torch.tensor([[0.0, 0.5]], requires_grad=True)
    loss = distillation_loss(a, b)
    loss.backward()
    assert loss.item() == pytest.approx(0.75)
    assert b.grad is None and a.grad is not None
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 4))


def test_a_nano_student_learns_a_fixed_teacher_on_real_photos():
    torch.manual_seed(0)
    x = photo_crops()
    s, t = student().train(), teacher()
    distiller = FeatureDistiller(feature_channels(s), feature_channels(t))
    optimizer = torch.optim.Adam([*s.parameters(), *distiller.parameters()], lr=3e-3)
    with torch.no_grad(), capture_features(t, t.feature_layers()) as t_feats:
        target = t(x)
        t_feats = list(t_feats)
    history = []  # (output L1, feature loss) per step
    with capture_features(s, s.feature_layers()) as s_feats:
        for _ in range(30):
            output = s(x)
            l1, features = distillation_loss(output, target), distiller(s_feats, t_feats)
            loss = 10 * l1 + features  # within GAN Compression's ranges, less GAN term
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append((l1.item(), features.item()))
    (first_l1, first_features), (last_l1, last_features) = history[0], history[-1]
    assert 10 * last_l1 + last_features < 0.65 * (10 * first_l1 + first_features), history
    assert last_l1 < 0.6 * first_l1 and last_features < 0.85 * first_features, history
