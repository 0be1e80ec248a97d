"""How much of the teacher gap the quality metric credits to near-copies of the teacher.

    python -m benchmarks.teacher_sensitivity [STYLE ...] [--out FILE.json] [--quick]

For each bundled style whose painting and held-out photos are built (STYLECAST_BUNDLED_WORK and
STYLECAST_STUDENTS, as for the quality section), the gap closed (training/quality.py) on the
held-out photos of:

- the teacher's own output, a little degraded: Gaussian blur, half resolution and back, JPEG;
- the teacher on a photo a camera could equally have taken: moved by a few pixels, with sensor
  noise, saved as JPEG, at 0.9x scale, or rendered in four tiles;
- the teacher's average over small moves, where pixel losses pull a student;
- the shipped students, for comparison.

Every image is compared on its inner part, INSET px in from each edge, so the edges a move
uncovers play no part; the figures differ a little from the quality section's full frames.
--quick runs the quality section's stand-in (multistyle:19 on three small photos) to check the
code; its figures mean nothing. Used to find why the bundled students miss the 0.5 gap-closed
target (docs/benchmarks.md, "Quality").
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from benchmarks.quality import (
    StyleCase,
    bundled_cases,
    held_out_photos,
    quick_cases,
    repeatability_stylizers,
    student_stylizer,
    teacher_stylizer,
)
from benchmarks.report import save_json

INSET = 8
Stylize = Callable[[np.ndarray], np.ndarray]


def _blurred(radius: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: np.array(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))


def _half_resolution(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    half = Image.fromarray(image).resize((width // 2, height // 2), Image.Resampling.BILINEAR)
    return np.array(half.resize((width, height), Image.Resampling.BILINEAR))


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def encode(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        return np.array(Image.open(buffer).convert("RGB"))

    return encode


OUTPUT_CHANGES = {
    "teacher's output blurred 0.5 px": _blurred(0.5),
    "teacher's output blurred 1 px": _blurred(1.0),
    "teacher's output at half resolution": _half_resolution,
    "teacher's output as JPEG q75": _jpeg(75),
}


def _scaled(render: Stylize, factor: float) -> Stylize:
    def stylize(photo: np.ndarray) -> np.ndarray:
        height, width = photo.shape[:2]
        small = Image.fromarray(photo).resize((round(width * factor), round(height * factor)),
                                              Image.Resampling.BICUBIC)
        output = Image.fromarray(render(np.array(small)))
        return np.array(output.resize((width, height), Image.Resampling.BICUBIC))

    return stylize


def _tiled(render: Stylize) -> Stylize:
    def stylize(photo: np.ndarray) -> np.ndarray:
        height, width = photo.shape[:2]
        output = np.empty_like(photo)
        for rows in (slice(0, height // 2), slice(height // 2, height)):
            for columns in (slice(0, width // 2), slice(width // 2, width)):
                output[rows, columns] = render(np.ascontiguousarray(photo[rows, columns]))
        return output

    return stylize


def photo_changes(render: Stylize) -> dict[str, Stylize]:
    from stylecast.training.quality import moved_photo_stylizer

    jpeg = _jpeg(95)
    return {
        **repeatability_stylizers(render),
        "teacher, photo moved 2 px": moved_photo_stylizer(render, 2, 2),
        "teacher, photo moved 4 px": moved_photo_stylizer(render, 4, 4),
        "teacher, photo as JPEG q95": lambda photo: render(jpeg(photo)),
        "teacher, photo at 0.9x scale": _scaled(render, 0.9),
        "teacher, photo in 2x2 tiles": _tiled(render),
    }


def _inner(image: np.ndarray) -> np.ndarray:
    return image[INSET:-INSET, INSET:-INSET]


def style_gaps(case: StyleCase, photos: list[np.ndarray], inception) -> dict[str, float]:
    """Gap closed of every near-copy of the teacher and of each student, on inner parts."""
    from stylecast.training.quality import feature_distance, gap_closed
    from stylecast.training.teachers.loader import load_teacher

    render = teacher_stylizer(load_teacher(case.teacher_source))
    outputs = [render(photo) for photo in photos]
    teacher_features = inception([_inner(output) for output in outputs])
    d_input = feature_distance(inception([_inner(photo) for photo in photos]), teacher_features)

    def gap(images: list[np.ndarray]) -> float:
        distance = feature_distance(inception([_inner(image) for image in images]),
                                    teacher_features)
        return gap_closed(d_input, distance)

    gaps = {name: gap([change(output) for output in outputs])
            for name, change in OUTPUT_CHANGES.items()}
    gaps |= {name: gap([stylize(photo) for photo in photos])
             for name, stylize in photo_changes(render).items()}
    for student in case.students:
        engine = student_stylizer(student.path)
        label = f"{engine.contract.preset} {engine.contract.precision} ({student.role})"
        gaps[label] = gap([engine(photo) for photo in photos])
    return gaps


def markdown(gaps: dict[str, dict[str, float]]) -> str:
    styles = list(gaps)
    names = list(dict.fromkeys(name for style in styles for name in gaps[style]))
    lines = [f"| gap closed | {' | '.join(styles)} |", "|---" * (len(styles) + 1) + "|"]
    for name in names:
        cells = [f"{gaps[style][name]:.3f}" if name in gaps[style] else "-" for style in styles]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.teacher_sensitivity",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("styles", nargs="*", help="bundled styles to measure (default: all)")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--quick", action="store_true",
                        help="the stand-in teacher and student on three small photos")
    args = parser.parse_args(argv)
    from stylecast.training.metrics import InceptionFeatures

    if args.out and not args.out.parent.is_dir():
        parser.exit(78, f"--out {args.out}: the folder {args.out.parent} does not exist\n")
    cases, missing = quick_cases() if args.quick else bundled_cases()
    cases = [case for case in cases if not args.styles or case.style in args.styles]
    if not cases:
        parser.exit(78, "no bundled style to measure: " + ("; ".join(missing) or
                                                          "none of those names") + "\n")
    photos = held_out_photos(args.quick)
    inception = InceptionFeatures(batch_size=8)
    gaps = {case.style: style_gaps(case, photos, inception) for case in cases}
    print(markdown(gaps))
    if args.out:
        save_json(gaps, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
