"""Distillation pairs (training/pairs.py) and the colour jitter they render (training/jitter.py):
crops come from the same place in photo and render, every augmentation happens before the
teacher, and variants repeat exactly so the render cache hits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from stylecast.training.data import ImageFolder
from stylecast.training.jitter import Jitter
from stylecast.training.pairs import RenderedPairs, Variant, variant_for

from support.stand_in_teachers import FunctionTeacher, MemoryRenders, toy_style

SIZE = 32
SCALES = (48, 64)


@pytest.fixture
def photos(image_folders) -> ImageFolder:
    return ImageFolder(image_folders / "content", "content", SIZE)


def pairs(photos, fn, variants=1, jitter=0.0) -> RenderedPairs:
    return RenderedPairs(photos, MemoryRenders(FunctionTeacher(fn)), SIZE, SCALES, variants, jitter)


def test_crops_of_photo_and_render_come_from_the_same_place(photos):
    torch.manual_seed(0)
    same, inverted = pairs(photos, lambda x: x), pairs(photos, lambda x: -x)
    for index in range(len(photos)):
        for _ in range(3):
            item = same[index]
            assert item["content"].shape == item["target"].shape == (3, SIZE, SIZE)
            torch.testing.assert_close(item["target"], item["content"])
            item = inverted[index]
            torch.testing.assert_close(item["target"], -item["content"])


def lopsided(x: torch.Tensor) -> torch.Tensor:
    """A teacher that is neither mirror-symmetric nor commutes with colour changes."""
    return (toy_style(x) + x - torch.roll(x, 1, dims=-1)).clamp(-1, 1)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None] / 127.5 - 1


def test_jitter_and_flip_happen_before_the_teacher(photos):
    """With jittered, flipped variants the target is still the teacher's render of exactly the
    pixels the student sees."""
    dataset = pairs(photos, lopsided, variants=4, jitter=1.0)
    flipped = 0
    for index in range(len(photos)):
        for scale in SCALES:
            for number in range(4):
                photo, render = dataset.pair(index, scale, number)
                assert min(photo.shape[:2]) == scale
                torch.testing.assert_close(as_tensor(render), lopsided(as_tensor(photo)),
                                           atol=1 / 127.5, rtol=0)
                flipped += variant_for(dataset._name(photos.paths[index]), scale, number,
                                       1.0).flip
    assert flipped > 0
    # The check has teeth: flipping or jittering a render is not rendering the changed photo.
    x = as_tensor(np.ascontiguousarray(data.astronaut()[::8, ::8]))
    assert (lopsided(x.flip(-1)) - lopsided(x).flip(-1)).abs().mean() > 0.05
    jitter = Jitter.random(np.random.default_rng(0), 1.0)
    photo = np.ascontiguousarray(data.astronaut()[::8, ::8])
    after = jitter.apply(np.ascontiguousarray(render_of(photo)))
    assert np.abs(render_of(jitter.apply(photo)).astype(int) - after).mean() > 5


def render_of(photo: np.ndarray) -> np.ndarray:
    from stylecast.training.imaging import tensor_to_image

    return tensor_to_image(lopsided(as_tensor(photo)))


def test_variants_repeat_exactly_so_each_is_rendered_once(photos):
    torch.manual_seed(0)
    dataset = pairs(photos, toy_style, variants=3, jitter=0.5)
    renders = dataset.renderer.renders
    assert dataset.prerender() == dataset.count() == len(photos) * len(SCALES) * 3
    assert len(renders) == dataset.count()
    for _ in range(3):
        for index in range(len(dataset)):
            dataset[index]
    assert len(renders) == dataset.count()  # every item found its render
    originals = [dataset.pair(0, SCALES[0], number)[0] for number in range(3)]
    assert not np.array_equal(originals[0], originals[1])
    assert not np.array_equal(originals[1], originals[2])


def test_variant_zero_is_the_photo_and_others_are_fixed_by_name_scale_number():
    assert variant_for("a.jpg", 360, 0, 1.0) == Variant()
    first = variant_for("a.jpg", 360, 1, 0.5)
    assert first == variant_for("a.jpg", 360, 1, 0.5)
    assert first != variant_for("a.jpg", 480, 1, 0.5) != variant_for("b.jpg", 360, 1, 0.5)
    assert {variant_for(f"{i}.jpg", 360, 1, 0.5).flip for i in range(20)} == {True, False}


def test_jitter_is_camera_like_and_exact():
    photo = np.ascontiguousarray(data.astronaut()[::4, ::4])
    assert np.array_equal(Jitter().apply(photo), photo)
    assert Jitter.random(np.random.default_rng(0), 0.0) == Jitter()
    jitter = Jitter.random(np.random.default_rng(1), 1.0)
    assert np.mean(jitter.white_balance) == pytest.approx(1)
    assert 0.6 <= jitter.exposure <= 1.4 and 0.5 <= jitter.saturation <= 1.5
    changed = jitter.apply(photo)
    assert changed.dtype == np.uint8 and changed.shape == photo.shape
    assert np.abs(changed.astype(int) - photo).mean() > 3
    assert np.array_equal(changed, jitter.apply(photo))
    with pytest.raises(ValueError, match="uint8"):
        jitter.apply(photo.astype(np.float32))


def test_scales_must_hold_a_crop(photos):
    with pytest.raises(ValueError, match="scale must be >= the crop size 32"):
        RenderedPairs(photos, MemoryRenders(FunctionTeacher(toy_style)), SIZE, (24, 48))
