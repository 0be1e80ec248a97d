"""A render cache on disk: each teacher renders each photo at each size once.

    FOLDER/<teacher.cache_key()>/<short side>/<sha256 of the photo's pixels>.png

A render is filed under the teacher's key (its weights and every option that changes a render),
the photo's decoded pixels (so a copied or renamed file is still the same photo, and two edits
of one file are not) and the size it was rendered at: the photo's shorter side (both sides then
cropped to multiples of 4). Files are PNG, written atomically (a reader sees a whole render or
none); one that cannot be read back, or has the wrong size, is rendered again.

The default FOLDER is `$XDG_CACHE_HOME/stylecast/teachers` (`~/.cache/stylecast/teachers`),
not the run folder: the key makes renders safe to share, so every student distilled from the
same teacher and photos (another preset, another recipe, a run started over) reuses them, and
the folder can be deleted at any time. `teacher.cache_dir` puts it elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stylecast.core.atomic import atomic_path
from stylecast.core.errors import InputError
from stylecast.training.imaging import image_to_tensor, tensor_to_image
from stylecast.training.teachers.base import Teacher
from stylecast.training.teachers.keys import image_sha256

log = logging.getLogger(__name__)
SIZE_MULTIPLE = 4  # what every student generator needs


def default_cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylecast" / "teachers"


def resize_to_short_side(photo: np.ndarray, short_side: int) -> np.ndarray:
    """`photo` (H, W, 3) uint8 scaled (bicubic, as the training data is) so that its shorter
    side is `short_side`, then centre-cropped by at most 3 px a side to multiples of 4: cropped,
    not stretched, so a photo already at its size keeps every pixel as it is."""
    if short_side < SIZE_MULTIPLE:
        raise ValueError(f"short_side must be >= {SIZE_MULTIPLE}, got {short_side}")
    height, width = photo.shape[:2]
    if min(height, width) != short_side:
        scale = short_side / min(height, width)
        size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
        photo = np.array(Image.fromarray(photo).resize(size, Image.Resampling.BICUBIC))
        height, width = photo.shape[:2]
    crop_h, crop_w = height % SIZE_MULTIPLE, width % SIZE_MULTIPLE
    top, left = crop_h // 2, crop_w // 2
    return photo[top : top + height - crop_h, left : left + width - crop_w]


@dataclass
class CacheCounts:
    rendered: int = 0  # renders the teacher made (and the cache filed)
    reused: int = 0  # renders read back from the cache


class RenderCache:
    def __init__(self, teacher: Teacher, folder: str | Path | None = None) -> None:
        self.teacher = teacher
        self.folder = Path(folder or default_cache_folder()) / teacher.cache_key()
        self.counts = CacheCounts()

    def path(self, photo: np.ndarray, short_side: int) -> Path:
        return self.folder / str(short_side) / f"{image_sha256(photo)}.png"

    def render(self, photo: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
        """(the photo resized to `short_side`, the teacher's render of it): uint8 (H, W, 3) RGB,
        the same shape. The teacher runs only when the cache holds no good render yet."""
        _check_photo(photo)
        resized = resize_to_short_side(photo, short_side)
        path = self.path(photo, short_side)
        cached = _read_render(path, resized.shape)
        if cached is not None:
            self.counts.reused += 1
            return resized, cached
        rendered = tensor_to_image(self.teacher.render(image_to_tensor(resized)))
        _write_png(path, rendered)
        self.counts.rendered += 1
        return resized, rendered

    def render_folder(self, paths: Iterable[str | Path], short_sides: Sequence[int],
                      progress: bool = True) -> CacheCounts:
        """Renders every image file at every shorter side that the cache does not hold yet."""
        from stylecast.training.data import load_rgb

        paths = list(paths)
        before = replace(self.counts)
        bar = tqdm(total=len(paths) * len(short_sides), desc="teacher renders", unit="render",
                   disable=not progress, dynamic_ncols=True)
        with bar:
            for path in paths:
                try:
                    photo = load_rgb(Path(path))
                except Exception as err:  # whatever Pillow raises for a file it cannot decode
                    raise InputError(f"{path}: not a readable image ({_first_line(err)})") from None
                for side in short_sides:
                    self.render(photo, side)
                    bar.update(1)
        return CacheCounts(self.counts.rendered - before.rendered,
                           self.counts.reused - before.reused)


def _check_photo(photo: np.ndarray) -> None:
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB photo, got {photo.dtype} "
                         f"{photo.shape}")


def _read_render(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The render filed at `path`, or None when there is none or it is unusable."""
    if not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            render = np.asarray(image.convert("RGB"))
    except Exception as err:  # a truncated or scrambled PNG: render it again
        log.warning("%s: unreadable cached render (%s); rendering it again", path,
                    _first_line(err))
        return None
    if render.shape != shape:
        log.warning("%s: cached render is %s, expected %s; rendering it again", path,
                    render.shape, shape)
        return None
    return render


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
