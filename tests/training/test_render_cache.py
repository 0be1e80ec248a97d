"""The render cache: each teacher renders each photo at each size once, keyed by the teacher,
the photo's pixels and the size; atomic PNG files; unusable files rendered again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stylecast.core.errors import InputError
from stylecast.training.teachers.cache import (
    RenderCache,
    default_cache_folder,
    resize_to_short_side,
)
from stylecast.training.teachers.loader import load_teacher
from stylecast.training.teachers.options import TeacherOptions


class CountingTeacher:
    """Inverts the photo, and counts the images it was asked to render."""

    style = None

    def __init__(self, key: str = "counting-1") -> None:
        self.description = "counting"
        self.key = key
        self.images = 0

    def cache_key(self) -> str:
        return self.key

    def render(self, images: torch.Tensor) -> torch.Tensor:
        self.images += len(images)
        return -images

    def feature_module(self):
        return None


@pytest.fixture
def photo(photo_rgb) -> np.ndarray:
    return photo_rgb[:150, :203].copy()  # 150x203: the long side is no multiple of 4


def test_second_render_comes_from_disk(tmp_path, photo):
    teacher = CountingTeacher()
    cache = RenderCache(teacher, tmp_path)
    resized, render = cache.render(photo, 64)
    assert resized.shape == render.shape == (64, 84, 3)  # 64 x 86.6, cropped to 84
    assert resized.dtype == render.dtype == np.uint8
    np.testing.assert_allclose(render.astype(int), 255 - resized.astype(int), atol=1)

    again = RenderCache(teacher, tmp_path)  # a new process: only the disk is shared
    resized_again, render_again = again.render(photo, 64)
    assert teacher.images == 1
    assert np.array_equal(resized_again, resized) and np.array_equal(render_again, render)
    assert (again.counts.rendered, again.counts.reused) == (0, 1)
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_key_changes_with_teacher_image_and_size(tmp_path, photo):
    teacher = CountingTeacher()
    cache = RenderCache(teacher, tmp_path)
    cache.render(photo, 64)
    cache.render(photo, 96)  # another size
    edited = photo.copy()
    edited[0, 0, 0] ^= 1
    cache.render(edited, 64)  # another photo (one value differs)
    assert teacher.images == 3
    other = CountingTeacher("counting-2")
    RenderCache(other, tmp_path).render(photo, 64)  # another teacher
    assert other.images == 1
    assert len(list(tmp_path.rglob("*.png"))) == 4
    assert cache.path(photo, 64) != cache.path(photo, 96) != cache.path(edited, 96)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong size"])
def test_an_unusable_cache_file_is_rendered_again(tmp_path, photo, damage):
    teacher = CountingTeacher()
    cache = RenderCache(teacher, tmp_path)
    _, render = cache.render(photo, 64)
    path = cache.path(photo, 64)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    else:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    _, again = cache.render(photo, 64)
    assert teacher.images == 2 and np.array_equal(again, render)
    assert np.array_equal(np.asarray(Image.open(path)), render)  # the file is whole again


def test_a_photo_at_its_size_keeps_its_pixels():
    photo = np.random.default_rng(0).integers(0, 256, (64, 90, 3), dtype=np.uint8)
    resized = resize_to_short_side(photo, 64)
    assert np.array_equal(resized, photo[:, 1:89])  # cropped to 88 wide, never resampled


@pytest.mark.parametrize(("shape", "side", "expected"), [
    ((480, 640), 360, (360, 480)), ((640, 480), 256, (340, 256)), ((100, 100), 66, (64, 64)),
    ((300, 1000), 64, (64, 212)),
])
def test_resize_sizes(shape, side, expected):
    photo = np.zeros((*shape, 3), np.uint8)
    assert resize_to_short_side(photo, side).shape[:2] == expected


def test_render_folder_prerenders_everything_once(image_folders, tmp_path):
    paths = sorted((image_folders / "content").rglob("*.*"))
    teacher = CountingTeacher()
    cache = RenderCache(teacher, tmp_path)
    first = cache.render_folder(paths, [32, 48], progress=False)
    assert (first.rendered, first.reused) == (2 * len(paths), 0)
    second = cache.render_folder(paths, [32, 48], progress=False)
    assert (second.rendered, second.reused) == (0, 2 * len(paths))
    assert teacher.images == 2 * len(paths)


def test_render_folder_names_an_unreadable_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match=r"bad\.jpg: not a readable image"):
        RenderCache(CountingTeacher(), tmp_path / "cache").render_folder([bad], [32],
                                                                        progress=False)


def test_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_folder() == tmp_path / "stylecast" / "teachers"
    assert RenderCache(CountingTeacher()).folder == tmp_path / "stylecast" / "teachers" / \
        "counting-1"


def test_a_real_teacher_through_the_cache(tmp_path, photo):
    teacher = load_teacher("multistyle:19", TeacherOptions(threads=1))
    cache = RenderCache(teacher, tmp_path)
    resized, render = cache.render(photo, 64)
    assert cache.folder.name.startswith("multistyle-")
    assert np.abs(render.astype(int) - resized.astype(int)).mean() > 20
    assert np.array_equal(RenderCache(teacher, tmp_path).render(photo, 64)[1], render)
