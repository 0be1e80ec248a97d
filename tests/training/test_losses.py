"""PatchGAN discriminator, GAN / cycle / identity losses and the image history pool."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn
from torch.nn.utils import parametrize

from stylecast.training.discriminator import PatchDiscriminator
from stylecast.training.imaging import image_to_tensor
from stylecast.training.losses import GANLoss, ImagePool, cycle_loss, identity_loss


def photo_crops(name: str, size: int, count: int) -> torch.Tensor:
    """`count` size x size crops along the diagonal of a scikit-image photo, in [-1, 1]."""
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    crops = [
        image_to_tensor(np.ascontiguousarray(image[i * size :, i * size :][:size, :size]))
        for i in range(count)
    ]
    return torch.cat(crops)


# --- PatchDiscriminator ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "logits"), [(256, 30), (128, 14)])
def test_patch_discriminator_logit_map_shape(size, logits):
    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=16)
    x = photo_crops("astronaut", size, 2)
    with torch.no_grad():
        out = disc(x)
    assert out.shape == (2, 1, logits, logits)
    assert torch.isfinite(out).all()


def test_default_discriminator_is_cyclegans_70x70_patchgan_in_size():
    # pytorch-CycleGAN-and-pix2pix's NLayerDiscriminator(3, 64, n_layers=3) has 2,764,737
    # parameters (convs with bias); with spectral norm ours has exactly the same convolutions.
    disc = PatchDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 2_764_737


def test_each_logit_sees_a_70x70_patch():
    torch.manual_seed(0)
    # Spectral norm, no InstanceNorm: instance statistics would couple every pixel to every logit.
    disc = PatchDiscriminator(channels=8)
    x = photo_crops("chelsea", 256, 1).requires_grad_(True)
    disc(x)[0, 0, 15, 15].backward()
    rows, cols = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
    assert int(rows.max() - rows.min()) + 1 == 70
    assert int(cols.max() - cols.min()) + 1 == 70


def test_spectral_norm_on_every_conv_and_no_norm_layers():
    disc = PatchDiscriminator(n_layers=3, spectral_norm=True)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert all(parametrize.is_parametrized(conv, "weight") for conv in convs)
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in disc.modules())


def test_without_spectral_norm_inner_convs_get_affine_instance_norm():
    disc = PatchDiscriminator(n_layers=3, spectral_norm=False)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in disc.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert not any(parametrize.is_parametrized(conv, "weight") for conv in convs)
    assert len(norms) == 3 and all(norm.affine for norm in norms)
    assert [norm.num_features for norm in norms] == [128, 256, 512]


# --- GANLoss --------------------------------------------------------------------------------


def test_lsgan_values_on_known_logits():
    loss = GANLoss("lsgan")
    real = torch.tensor([1.0, 0.0, 3.0])  # squared distances to 1: 0, 1, 4
    fake = torch.tensor([0.0, 2.0, -1.0])  # squared distances to 0: 0, 4, 1; to 1: 1, 1, 4
    assert loss.generator_loss(fake).item() == pytest.approx(2.0)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (5 / 3 + 5 / 3))


def test_hinge_values_on_known_logits():
    loss = GANLoss("hinge")
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real): 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + fake): 0, 1, 2
    assert loss.generator_loss(fake).item() == pytest.approx(1 / 3)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(2.5 / 3 + 1.0)


def test_perfect_discriminator_scores_zero_in_both_modes():
    real, fake = torch.full((2, 1, 4, 4), 1.0), torch.full((2, 1, 4, 4), -1.0)
    assert GANLoss("hinge").discriminator_loss(real, fake).item() == 0
    assert GANLoss("lsgan").discriminator_loss(real, fake + 1).item() == 0


def test_unknown_gan_mode_is_named():
    with pytest.raises(ValueError, match="'wgan'"):
        GANLoss("wgan")


@pytest.mark.parametrize("spectral_norm", [True, False])
@pytest.mark.parametrize("mode", ["lsgan", "hinge"])
def test_discriminator_steps_lower_its_loss(mode, spectral_norm):
    """A toy domain split, coffee photo crops ("real") against grass texture crops ("fake")."""
    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=8, n_layers=2, spectral_norm=spectral_norm)
    loss = GANLoss(mode)
    real = photo_crops("coffee", 64, 4)
    fake = photo_crops("grass", 64, 4)
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(15):
        value = loss.discriminator_loss(disc(real), disc(fake))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]
    fake.requires_grad_(True)
    loss.generator_loss(disc(fake)).backward()  # the generator learns through D's logits
    assert fake.grad.abs().sum() > 0


def test_cycle_and_identity_losses_are_l1():
    a, b = photo_crops("astronaut", 32, 2).chunk(2)
    expected = (a - b).abs().mean().item()
    assert cycle_loss(a, b).item() == pytest.approx(expected)
    assert identity_loss(a, b).item() == pytest.approx(expected)
    assert cycle_loss(a, a).item() == 0


# --- ImagePool ------------------------------------------------------------------------------


def numbered(first: int, count: int) -> torch.Tensor:
    """Images whose every pixel is their number, so a returned image can be told apart."""
    values = torch.arange(first, first + count, dtype=torch.float32)
    return values.view(-1, 1, 1, 1).repeat(1, 3, 4, 4)


def labels(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_pool_of_size_zero_passes_images_through():
    pool = ImagePool(0)
    images = numbered(0, 5)
    assert pool.query(images) is images
    assert pool.state_dict() == {"size": 0, "images": []}


def test_pool_fills_then_mixes_history_in():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = pool.query(numbered(0, 4))
    assert labels(first) == [0, 1, 2, 3]  # filling: returned as given
    seen_old = 0
    for start in range(4, 104, 4):
        batch = numbered(start, 4)
        out = pool.query(batch)
        assert out.shape == batch.shape  # never more (or fewer) than it got
        for position, label in enumerate(labels(out)):
            # the new image, or history (which includes this batch's images already stored)
            assert label <= start + position
            seen_old += label != start + position
        assert len(pool.images) == 4
    assert 25 < seen_old < 75  # p = 0.5 over 100 draws


def test_pool_half_full_mixes_filling_and_swapping():
    torch.manual_seed(1)
    pool = ImagePool(3)
    out = pool.query(numbered(0, 5))  # 3 fill the pool, the last 2 may swap
    assert labels(out)[:3] == [0, 1, 2]
    assert len(pool.images) == 3


def test_pool_returns_detached_images_and_stores_copies():
    pool = ImagePool(2)
    images = numbered(0, 2).requires_grad_(True)
    assert not pool.query(images).requires_grad
    with torch.no_grad():
        images.fill_(-7)  # the caller reuses its buffer: the history must not change
    assert labels(torch.stack(pool.images)) == [0, 1]


def test_pool_is_reproducible_with_a_seed():
    def run() -> list[int]:
        torch.manual_seed(123)
        pool = ImagePool(5)
        return [label for i in range(10) for label in labels(pool.query(numbered(3 * i, 3)))]

    assert run() == run()


def test_pool_state_round_trips_through_a_weights_only_file(tmp_path):
    torch.manual_seed(0)
    pool = ImagePool(3)
    pool.query(numbered(0, 5))
    torch.save(pool.state_dict(), tmp_path / "pool.pt")
    restored = ImagePool(3)
    restored.load_state_dict(torch.load(tmp_path / "pool.pt", weights_only=True))
    assert [labels(i[None])[0] for i in restored.images] == [
        labels(i[None])[0] for i in pool.images
    ]
    torch.manual_seed(5)
    expected = labels(pool.query(numbered(10, 6)))
    torch.manual_seed(5)
    assert labels(restored.query(numbered(10, 6))) == expected


def test_pool_refuses_a_state_of_another_size():
    with pytest.raises(ValueError, match="size 3"):
        ImagePool(4).load_state_dict({"size": 3, "images": []})
