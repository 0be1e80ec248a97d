"""Training data on real photos from scikit-image: listing, checking, cropping, batching."""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from stylecast.core.errors import InputError
from stylecast.training.data import (
    ContentImages,
    ImageFolder,
    UnpairedImages,
    infinite_batches,
    list_images,
    load_rgb,
)
from stylecast.training.imaging import tensor_to_image

SIZE = 64


def _save(path: Path, image: np.ndarray | Image.Image, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path, **options)
    return path


def _jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _write_photos(root: Path) -> list[Path]:
    """Six real photos in mixed formats, modes and subfolders, plus two files to be ignored."""
    rgba = np.dstack([skdata.chelsea(), np.full(skdata.chelsea().shape[:2], 200, np.uint8)])
    images = [
        _save(root / "astronaut.jpg", skdata.astronaut(), quality=90),
        _save(root / "chelsea.png", skdata.chelsea()),
        _save(root / "sub" / "coffee.webp", skdata.coffee(), quality=90),
        _save(root / "sub" / "deeper" / "rocket.JPEG", skdata.rocket(), quality=90),
        _save(root / "camera_gray.png", skdata.camera()),
        _save(root / "sub" / "chelsea_rgba.png", rgba),
    ]
    (root / "notes.txt").write_text("not an image\n")
    _save(root / "sub" / "anim.gif", skdata.coffee())
    return images


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("photos")
    return root, _write_photos(root)


@pytest.fixture(scope="module")
def tall_png(tmp_path_factory) -> Path:
    """coffee turned on its side: 600 high, 400 wide, lossless so crops compare exactly."""
    root = tmp_path_factory.mktemp("tall")
    return _save(root / "tall.png", np.ascontiguousarray(np.rot90(skdata.coffee())))


def _add_bad_files(root: Path) -> None:
    raw = _jpeg_bytes(skdata.astronaut())
    (root / "broken").mkdir()
    (root / "broken" / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    (root / "x.png").write_bytes(b"this is not a png\n")


# Listing ----------------------------------------------------------------------------------------

def test_list_images_is_recursive_sorted_and_filters_suffixes(photos):
    root, images = photos
    listed = list_images(root, "content")
    assert listed == sorted(images)
    assert {path.suffix for path in listed} == {".jpg", ".png", ".webp", ".JPEG"}
    assert list_images(root, "content") == listed  # deterministic


@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_unusable_folder_is_one_line_naming_role_and_folder(tmp_path, kind):
    folder = tmp_path / "photos"
    if kind == "file":
        folder.write_text("a file, not a folder")
    elif kind == "empty":
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError) as caught:
        list_images(folder, "style")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"style folder {folder}/: ")
    if kind == "empty":
        assert message.endswith("no .jpg/.jpeg/.png/.webp images found (searched recursively)")


# Decoding ---------------------------------------------------------------------------------------

def test_load_rgb_converts_every_mode_to_rgb(tmp_path):
    chelsea = skdata.chelsea()
    gray16 = skdata.camera().astype(np.uint16) * 256 + 128  # high byte: the 8-bit photo
    palette = Image.fromarray(chelsea).quantize(64)
    palette.info["transparency"] = 0
    files = {
        "gray.png": _save(tmp_path / "gray.png", skdata.camera()),
        "gray16.png": _save(tmp_path / "gray16.png", Image.fromarray(gray16)),
        "rgba.png": _save(tmp_path / "rgba.png", np.dstack([chelsea, chelsea[..., :1]])),
        "palette.png": _save(tmp_path / "palette.png", palette),
        "cmyk.jpg": _save(tmp_path / "cmyk.jpg", Image.fromarray(chelsea).convert("CMYK")),
    }
    for name, path in files.items():
        image = load_rgb(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert image.flags.writeable, name
    for name in ("gray.png", "gray16.png"):
        image = load_rgb(files[name])
        np.testing.assert_array_equal(image, np.repeat(skdata.camera()[..., None], 3, axis=2))
    np.testing.assert_array_equal(load_rgb(files["rgba.png"]), chelsea)


def test_load_rgb_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    path = _save(tmp_path / "sideways.jpg", skdata.chelsea(), exif=exif)
    assert skdata.chelsea().shape == (300, 451, 3)
    assert load_rgb(path).shape == (451, 300, 3)


def test_load_rgb_raises_on_truncated_jpeg(tmp_path):
    raw = _jpeg_bytes(skdata.coffee())
    path = tmp_path / "half.jpg"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(OSError, match="truncated"):
        load_rgb(path)


# Checking ---------------------------------------------------------------------------------------

def test_bad_files_are_skipped_and_counted(tmp_path):
    _save(tmp_path / "coffee.jpg", skdata.coffee(), quality=90)
    _save(tmp_path / "a" / "rocket.png", skdata.rocket())
    _add_bad_files(tmp_path)
    dataset = ImageFolder(tmp_path, "content", SIZE)
    assert [path.name for path in dataset.paths] == ["rocket.png", "coffee.jpg"]
    assert len(dataset) == 2
    assert [(path.name, reason) for path, reason in dataset.skipped] == [
        ("truncated.jpg", "truncated"), ("x.png", "cannot identify image file"),
    ]
    assert dataset.summary() == (
        f"content: 2 images in {tmp_path}/ (2 skipped: broken/truncated.jpg: truncated, "
        "x.png: cannot identify image file)"
    )


def test_summary_of_a_clean_folder_and_capped_skip_list(tmp_path):
    _save(tmp_path / "coffee.jpg", skdata.coffee(), quality=90)
    assert ImageFolder(tmp_path, "style", SIZE).summary() == f"style: 1 image in {tmp_path}/"
    for number in range(7):
        (tmp_path / f"bad{number}.png").write_bytes(b"junk")
    summary = ImageFolder(tmp_path, "style", SIZE).summary()
    assert "(7 skipped: bad0.png: cannot identify image file, " in summary
    assert "bad4.png" in summary and "bad5.png" not in summary
    assert summary.endswith(", ...)")
    assert "\n" not in summary


def test_folder_of_only_bad_files_is_an_input_error(tmp_path):
    _add_bad_files(tmp_path)
    with pytest.raises(InputError) as caught:
        ImageFolder(tmp_path, "style", SIZE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"style folder {tmp_path}/: ")
    assert "2 skipped" in message


def test_progress_bar_names_the_role(photos, capsys):
    ImageFolder(photos[0], "style", SIZE, progress=True)
    assert "checking style images" in capsys.readouterr().err


@pytest.mark.parametrize("size", [0, -4, 30, 258])
def test_size_must_be_a_positive_multiple_of_four(photos, size):
    with pytest.raises(ValueError, match="multiple of 4"):
        ImageFolder(photos[0], "content", size)


def test_load_scale_below_one_is_refused(photos):
    with pytest.raises(ValueError, match="load_scale"):
        ImageFolder(photos[0], "content", SIZE, load_scale=0.9)


# Items ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("augment", [True, False])
def test_items_are_square_float_tensors_in_range(photos, augment):
    dataset = ImageFolder(photos[0], "content", SIZE, augment=augment)
    assert len(dataset) == 6
    for index in range(len(dataset)):
        item = dataset[index]
        assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.float32
        assert item.min() >= -1 and item.max() <= 1
        assert item.std() > 0.02  # a photo, not a constant
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def _resized_reference(path: Path, size: int, load_scale: float) -> np.ndarray:
    image = Image.fromarray(load_rgb(path))
    side = round(size * load_scale)
    width, height = image.size
    target = (side, round(height * side / width)) if width <= height else (
        round(width * side / height), side)
    return np.asarray(image.resize(target, Image.Resampling.BICUBIC))


def test_center_crop_without_augment_is_deterministic(tall_png):
    dataset = ImageFolder(tall_png.parent, "content", SIZE, augment=False)
    resized = _resized_reference(tall_png, SIZE, 1.12)
    assert resized.shape == (108, 72, 3)  # shorter side round(64 * 1.12) = 72, aspect kept
    torch.manual_seed(0)
    first = dataset[0]
    torch.manual_seed(1)
    assert torch.equal(dataset[0], first)
    top, left = (108 - SIZE) // 2, (72 - SIZE) // 2
    np.testing.assert_array_equal(tensor_to_image(first),
                                  resized[top:top + SIZE, left:left + SIZE])


def _window_of(crop: np.ndarray, image: np.ndarray) -> tuple[int, int, bool] | None:
    """Where `crop` sits in `image` (top, left, flipped), or None if it is no window of it."""
    size = crop.shape[0]
    for flipped, candidate in ((False, crop), (True, crop[:, ::-1])):
        for top in range(image.shape[0] - size + 1):
            for left in range(image.shape[1] - size + 1):
                if np.array_equal(image[top:top + size, left:left + size], candidate):
                    return top, left, flipped
    return None


def test_random_crops_come_from_the_aspect_kept_resize(tall_png):
    dataset = ImageFolder(tall_png.parent, "content", SIZE)
    resized = _resized_reference(tall_png, SIZE, 1.12)
    windows = []
    for seed in range(8):
        torch.manual_seed(seed)
        window = _window_of(tensor_to_image(dataset[0]), resized)
        assert window is not None, f"seed {seed}: crop is not a window of the resized image"
        windows.append(window)
    assert len({top for top, _, _ in windows}) > 1
    assert {flipped for _, _, flipped in windows} == {False, True}


def test_augment_is_reproducible_from_the_torch_seed(photos):
    dataset = ImageFolder(photos[0], "content", SIZE)
    crops = {}
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        crops.setdefault(seed, []).append(torch.stack([dataset[i] for i in range(3)]))
    assert torch.equal(crops[0][0], crops[0][1])
    assert not torch.equal(crops[0][0], crops[1][0])


def test_file_that_breaks_after_the_check_is_replaced_by_the_next(tmp_path, caplog):
    _save(tmp_path / "a.png", skdata.coffee())
    _save(tmp_path / "b.png", skdata.chelsea())
    dataset = ImageFolder(tmp_path, "content", SIZE, augment=False)
    expected = dataset[1]
    (tmp_path / "a.png").write_bytes(b"overwritten with junk")
    with caplog.at_level(logging.WARNING, logger="stylecast.training.data"):
        assert torch.equal(dataset[0], expected)
        assert torch.equal(dataset[0], expected)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "a.png" in warnings[0]


# Pairing and batching ---------------------------------------------------------------------------

def test_unpaired_images_cover_the_larger_set_with_random_styles(photos, tmp_path):
    _save(tmp_path / "brick.png", skdata.brick())
    _save(tmp_path / "grass.png", skdata.grass())
    content = ImageFolder(photos[0], "content", SIZE, augment=False)
    style = ImageFolder(tmp_path, "style", SIZE, augment=False)
    pairs = UnpairedImages(content, style)
    assert len(pairs) == 6 and len(UnpairedImages(style, content)) == 6
    styles = set()
    for index in range(len(pairs)):
        item = pairs[index]
        assert set(item) == {"content", "style"}
        assert torch.equal(item["content"], content[index])
        styles.add(next(i for i in range(2) if torch.equal(item["style"], style[i])))
    assert styles == {0, 1}
    wrapped = UnpairedImages(style, content)[3]["content"]
    assert torch.equal(wrapped, style[1])  # content index wraps around the smaller set
    with pytest.raises(IndexError):
        pairs[6]


def test_content_images_for_distillation(photos):
    content = ImageFolder(photos[0], "content", SIZE, augment=False)
    items = ContentImages(content)
    assert len(items) == 6
    assert set(items[2]) == {"content"} and torch.equal(items[2]["content"], content[2])


class _Indices(torch.utils.data.Dataset):
    """Items that say which index they are, to follow the sampler."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"index": torch.tensor(index)}


def _take(batches, count: int) -> list[list[int]]:
    return [next(batches)["index"].tolist() for _ in range(count)]


def _flat(batches: list[list[int]]) -> list[int]:
    return [index for batch in batches for index in batch]


def test_infinite_batches_of_photos_span_epochs(photos):
    content = ContentImages(ImageFolder(photos[0], "content", 32))
    batches = infinite_batches(content, 4, seed=0)
    for _ in range(3):  # 6 images, drop_last: one batch an epoch
        batch = next(batches)
        assert set(batch) == {"content"}
        assert batch["content"].shape == (4, 3, 32, 32)
        assert batch["content"].dtype == torch.float32


def test_infinite_batches_reshuffle_each_epoch_and_repeat_by_seed():
    epochs = _take(infinite_batches(_Indices(12), 3, seed=5), 4 * 3)
    orders = [_flat(epochs[start:start + 4]) for start in (0, 4, 8)]
    for order in orders:
        assert sorted(order) == list(range(12))
    assert orders[0] != orders[1]
    assert _take(infinite_batches(_Indices(12), 3, seed=5), 4) == epochs[:4]
    assert _take(infinite_batches(_Indices(12), 3, seed=6), 4) != epochs[:4]


def test_two_ranks_see_disjoint_indices_within_an_epoch():
    ranks = [_take(infinite_batches(_Indices(12), 3, seed=1, rank=rank, world_size=2), 4)
             for rank in (0, 1)]
    for epoch in (slice(0, 2), slice(2, 4)):  # 6 items a rank: two batches an epoch
        seen = [_flat(batches[epoch]) for batches in ranks]
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == list(range(12))


@pytest.mark.parametrize(("count", "world_size", "shape"), [(3, 1, [3]), (3, 2, [2])])
def test_dataset_smaller_than_a_batch_still_yields(count, world_size, shape):
    batches = infinite_batches(_Indices(count), 8, seed=0, world_size=world_size)
    for _ in range(3):
        assert list(_next_within(batches, seconds=10)["index"].shape) == shape


def _next_within(batches, seconds: float) -> dict[str, torch.Tensor]:
    """next(batches), failing instead of hanging when an epoch yields no batch at all."""
    got: list[dict[str, torch.Tensor]] = []
    thread = threading.Thread(target=lambda: got.append(next(batches)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert got, f"no batch within {seconds} s: every epoch is empty"
    return got[0]


def test_worker_processes_reproduce_augmentation_from_the_seed(photos):
    content = ContentImages(ImageFolder(photos[0], "content", 32))
    runs = []
    for _ in range(2):
        batches = infinite_batches(content, 3, seed=7, num_workers=1)
        runs.append(torch.cat([next(batches)["content"] for _ in range(3)]))
        batches.close()  # shuts the persistent worker down
    assert torch.equal(runs[0], runs[1])


def test_center_crops_are_the_unaugmented_items(photos):
    root, _paths = photos
    augmented = ImageFolder(root, "content", 32)
    plain = ImageFolder(root, "content", 32, augment=False)
    crops = augmented.center_crops(3)
    assert crops.shape == (3, 3, 32, 32)
    for i in range(3):
        assert torch.equal(crops[i], plain[i])
    assert augmented.augment  # the dataset itself still augments
