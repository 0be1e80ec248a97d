"""Training data: image folders checked up front, cropped and flipped into [-1, 1] tensors.

A folder is searched recursively for .jpg/.jpeg/.png/.webp files and every file is decoded once
when its dataset is built, so a truncated download or a stray non-image is reported in one
summary line at start-up instead of crashing a run hours later. Items follow CycleGAN's recipe:
resize the shorter side to size * load_scale, crop size x size (random when augmenting, else the
center), flip horizontally with p=0.5 when augmenting. All randomness comes from torch's RNG, so
torch.manual_seed and DataLoader worker seeding make a run reproducible.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from stylecast.core.errors import InputError
from stylecast.training.generator import SIZE_MULTIPLE
from stylecast.training.imaging import image_to_tensor

logger = logging.getLogger(__name__)

_SUFFIX_ORDER = (".jpg", ".jpeg", ".png", ".webp")
IMAGE_SUFFIXES = frozenset(_SUFFIX_ORDER)
_SHOWN_SKIPS = 5
_CHECK_THREADS = min(8, os.cpu_count() or 1)


def list_images(folder: Path, role: str) -> list[Path]:
    """Every image file under `folder`, recursively, sorted; InputError (one line) if none."""
    folder = Path(folder)
    where = f"{role} folder {_show(folder)}"
    if not folder.exists():
        raise InputError(f"{where}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{where}: not a folder")
    paths = sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )
    if not paths:
        suffixes = "/".join(_SUFFIX_ORDER)
        raise InputError(f"{where}: no {suffixes} images found (searched recursively)")
    return paths


def load_rgb(path: Path) -> np.ndarray:
    """Decode a whole image file to (H, W, 3) uint8 RGB, turned upright per its EXIF orientation.

    Raises what Pillow raises for a file it cannot decode (OSError, including a truncated file).
    """
    return np.array(_decode(path))


def _decode(path: Path, min_side: int | None = None) -> Image.Image:
    with Image.open(path) as image:
        if min_side is not None:
            # JPEG only: decode at the smallest DCT scale (1/2 .. 1/8) that keeps both sides
            # >= min_side; a 12 MP photo cropped to 256 then decodes many times faster.
            image.draft(None, (min_side, min_side))
        return _to_rgb(ImageOps.exif_transpose(image))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16"):
        # Pillow clips 16-bit samples at 255 when converting; keep the high byte instead.
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8)).convert("RGB")
    if "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow warns on palette transparency straight to RGB
    return image.convert("RGB")


class ImageFolder(Dataset[torch.Tensor]):
    """The decodable images under a folder, as (3, size, size) float32 tensors in [-1, 1]."""

    def __init__(
        self, folder: Path, role: str, size: int, *, augment: bool = True,
        load_scale: float = 1.12, progress: bool = False,
    ) -> None:
        if size < 1 or size % SIZE_MULTIPLE:
            raise ValueError(
                f"{role} image size must be a positive multiple of {SIZE_MULTIPLE}, got {size}"
            )
        if load_scale < 1:
            raise ValueError(f"load_scale must be >= 1 (crops are cut from inside the resized "
                             f"image), got {load_scale}")
        self.folder = Path(folder)
        self.role = role
        self.size = size
        self.load_size = round(size * load_scale)
        self.augment = augment
        self.paths, self.skipped = _sort_decodable(
            list_images(self.folder, role), f"checking {role} images", progress
        )
        if not self.paths:
            raise InputError(
                f"{role} folder {_show(self.folder)}: none of its images decodes "
                f"({len(self.skipped)} skipped: {_describe_skips(self.folder, self.skipped)})"
            )
        self._failed: set[Path] = set()  # files that stopped decoding after the check

    def summary(self) -> str:
        """One log line: how many images, from where, and which files were skipped and why."""
        count = len(self.paths)
        line = f"{self.role}: {count} image{'' if count == 1 else 's'} in {_show(self.folder)}"
        if not self.skipped:
            return line
        return f"{line} ({len(self.skipped)} skipped: {_describe_skips(self.folder, self.skipped)})"

    def __len__(self) -> int:
        return len(self.paths)

    def center_crops(self, count: int) -> torch.Tensor:
        """The first `count` images, center-cropped and unflipped: fixed inputs for samples."""
        fixed = copy.copy(self)
        fixed.augment = False
        return torch.stack([fixed[i] for i in range(min(count, len(self)))])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self._transform(self.decoded(index, self.load_size)[1])

    def decoded(self, index: int, min_side: int) -> tuple[Path, Image.Image]:
        """Image `index` decoded upright (JPEGs at the smallest scale with both sides >=
        min_side), and its path; the next image that decodes if this one no longer does."""
        count = len(self.paths)
        index = range(count)[index]  # IndexError past the end, as a sequence must
        for step in range(count):
            path = self.paths[(index + step) % count]
            if path in self._failed:
                continue
            try:
                return path, _decode(path, min_side=min_side)
            except Exception as err:  # whatever Pillow raises, a long run must not die of it
                self._failed.add(path)
                logger.warning("%s image %s no longer decodes (%s); using the next image instead",
                               self.role, path, _reason(err))
        raise InputError(f"{self.role} folder {_show(self.folder)}: none of its images decodes "
                         f"any more")

    def _transform(self, image: Image.Image) -> torch.Tensor:
        image = resize_shorter_side(image, self.load_size)
        width, height = image.size
        if self.augment:
            top = int(torch.randint(height - self.size + 1, ()))
            left = int(torch.randint(width - self.size + 1, ()))
        else:
            top, left = (height - self.size) // 2, (width - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        if self.augment and torch.rand(()) < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image_to_tensor(np.array(image))[0].contiguous()


def resize_shorter_side(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    scale = side / min(width, height)
    target = (max(side, round(width * scale)), max(side, round(height * scale)))
    return image.resize(target, Image.Resampling.BICUBIC)


class UnpairedImages(Dataset[dict[str, torch.Tensor]]):
    """Content image i with a random style image (CycleGAN's unaligned pairs)."""

    def __init__(self, content: ImageFolder, style: ImageFolder) -> None:
        self.content = content
        self.style = style

    def __len__(self) -> int:
        return max(len(self.content), len(self.style))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = range(len(self))[index]
        style_index = int(torch.randint(len(self.style), ()))
        return {"content": self.content[index % len(self.content)],
                "style": self.style[style_index]}


class ContentImages(Dataset[dict[str, torch.Tensor]]):
    """Content images alone, for distillation (the teacher makes the targets)."""

    def __init__(self, content: ImageFolder) -> None:
        self.content = content

    def __len__(self) -> int:
        return len(self.content)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"content": self.content[index]}


def infinite_batches(
    dataset: Dataset[dict[str, torch.Tensor]], batch_size: int, *, seed: int, rank: int = 0,
    world_size: int = 1, num_workers: int = 0, drop_last: bool = True,
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches forever, reshuffled each epoch; each of `world_size` ranks gets its own share.

    Worker processes are seeded from (seed, rank), so augmentation differs between ranks and
    repeats between runs. With num_workers=0 items draw from this process's torch RNG instead.
    """
    size = len(dataset)  # type: ignore[arg-type]
    if size < 1 or batch_size < 1 or world_size < 1:
        raise ValueError(f"need a non-empty dataset, batch_size >= 1 and world_size >= 1, got "
                         f"{size} items, batch_size {batch_size}, world_size {world_size}")
    if drop_last and size // world_size < batch_size:
        # Dropping the last partial batch would leave no batch at all: loop forever, yield nothing.
        logger.warning("%d items make less than one batch of %d per process; using partial "
                       "batches", size, batch_size)
        drop_last = False
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=seed, drop_last=drop_last)
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
        drop_last=drop_last, generator=torch.Generator().manual_seed(seed * world_size + rank),
    )
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _sort_decodable(
    paths: Sequence[Path], desc: str, progress: bool,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split files into those that decode and (path, reason) for those that do not."""
    good: list[Path] = []
    bad: list[tuple[Path, str]] = []
    with ThreadPoolExecutor(_CHECK_THREADS) as pool:  # Pillow decodes without holding the GIL
        problems = pool.map(_decode_problem, paths)
        checked = zip(paths, problems, strict=True)
        for path, problem in tqdm(checked, total=len(paths), desc=desc, unit="img",
                                  disable=not progress):
            if problem is None:
                good.append(path)
            else:
                bad.append((path, problem))
    return good, bad


def _decode_problem(path: Path) -> str | None:
    """Why `path` cannot be used as an image, or None when it decodes in full."""
    try:
        _decode(path)
    except Exception as err:  # anything a decoder raises makes the file unusable, not the run
        return _reason(err)
    return None


def _reason(err: Exception) -> str:
    """A short reason without the file's path (the summary names the file)."""
    if isinstance(err, UnidentifiedImageError):
        return "cannot identify image file"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()  # e.g. "permission denied", without the path
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return "truncated" if "truncated" in text else text


def _describe_skips(folder: Path, skipped: Sequence[tuple[Path, str]]) -> str:
    shown = [f"{_relative(path, folder)}: {reason}" for path, reason in skipped[:_SHOWN_SKIPS]]
    if len(skipped) > _SHOWN_SKIPS:
        shown.append("...")
    return ", ".join(shown)


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _show(folder: Path) -> str:
    """A folder as the user wrote it, with a trailing separator: photos/."""
    return os.path.join(str(folder), "")
