"""Quality section: how close each bundled student comes to its teacher, and how steady it is.

For each style of configs/bundled/styles.toml whose students exist, on the held-out photos (which
no style trains on), per shipped precision:

- teacher distance and **gap closed** (training/quality.py): InceptionV3 pool features (a layer
  no training loss uses) of the student's output vs the teacher's, beside the same distance for
  the unstylized input; KID between student and teacher outputs;
- warping error on camera pans over the photos and on scikit-image's animated GIF (a real
  clip, upscaled, with OpenCV's Farneback flow between its input frames), student vs teacher;
- cost: student GMAC and ms/frame at 640x480 vs the teacher's;
- the teacher's repeatability: its own gap closed on the photo moved by one pixel and on the
  photo with camera-like noise (training/quality.py), the ceiling a student's figure is read
  against, and that of its average over small moves, where pixel losses pull a student.

Where the students and the painting come from (override with environment variables):
STYLECAST_BUNDLED_WORK (default runs/bundled: what configs/bundled/build.sh writes: the
paintings in sources/paintings/, the held-out photos in photos/heldout/), STYLECAST_STUDENTS
(default daemon/models: NAME.onnx the CPU default in INT8, fp32/NAME.onnx, small/NAME.onnx) and
STYLECAST_EXTRA_STUDENTS (optional: a folder of NAME.*.onnx students to compare beside them,
e.g. another preset trained with the same recipe). A student is labelled by the preset and
precision its artifact records.

--quick checks that the code runs, on packages alone: the default bundled style stands in as
the student of Magenta's multistyle style 19 on three small scikit-image photos; its figures
mean nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from benchmarks.common import Section, Target

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "configs" / "bundled" / "styles.toml"
HELD_OUT_SHORT_SIDE = 360  # camera-like: the students run on 640x480 frames
QUICK_SHORT_SIDE = 96
PAN_PHOTOS = 4
CLIP_SCALE = 8  # the GIF is 14x25: upscaled so the stylizers see more than a few pixels
COST_SIZE = (480, 640)
# the shipped students the gap targets are for (roles in bundled_cases), and the gap to close
GAP_TARGETS = {"cpu default": 0.5, "jetson": 0.6}
Stylize = Callable[[np.ndarray], np.ndarray]
REPEAT_MOVED = "teacher, photo moved 1 px"
REPEAT_NOISY = "teacher, photo + noise (sigma 2)"
REPEAT_AVERAGE = "average of the teacher over 11 moves of 0-3 px"
SMALL_MOVES = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 2), (1, 3), (3, 1), (3, 3), (2, 1),
               (1, 2)]  # (down, right) in pixels


@dataclass(frozen=True)
class Student:
    style: str
    role: str  # "cpu default", "cpu fp32", "jetson", "compared"
    path: Path


@dataclass(frozen=True)
class StyleCase:
    style: str
    teacher_source: str
    students: list[Student]


def run(quick: bool) -> Section:
    section = Section(
        name="quality", title="Quality: students vs their teachers on held-out photos",
        columns={"style": "style", "model": "model", "role": "role", "gmacs": "GMAC",
                 "ms": "ms/frame", "d_input": "d(input)", "d_model": "d(model)",
                 "gap_closed": "gap closed", "kid": "KID", "pan_warp": "pan warp",
                 "clip_warp": "clip warp"})
    cases, missing = (quick_cases() if quick else bundled_cases())
    if not cases:
        section.skipped = ("no bundled style has its students built yet: " + "; ".join(missing))
        return section
    photos = held_out_photos(quick)
    clip, flows = _real_clip()
    from stylecast.training.metrics import InceptionFeatures

    inception = InceptionFeatures(batch_size=8)
    for case in cases:
        section.rows += _measure_style(case, photos, clip, flows, inception, quick)
    section.targets += _targets(section.rows)
    section.notes += _notes(photos, quick, missing)
    return section


# --- what to measure ---------------------------------------------------------------------------


def bundled_cases() -> tuple[list[StyleCase], list[str]]:
    work = Path(os.environ.get("STYLECAST_BUNDLED_WORK", ROOT / "runs" / "bundled"))
    models = Path(os.environ.get("STYLECAST_STUDENTS", ROOT / "daemon" / "models"))
    with MANIFEST.open("rb") as file:
        styles = tomllib.load(file)["styles"]
    cases, missing = [], []
    for style, entry in styles.items():
        shipped = {"cpu default": models / f"{style}.onnx",
                   "cpu fp32": models / "fp32" / f"{style}.onnx",
                   "jetson": models / "small" / f"{style}.onnx"}
        students = [Student(style, role, path) for role, path in shipped.items()
                    if path.is_file()]
        students += [Student(style, "compared", path) for path in _extra_students(style)]
        painting = work / "sources" / "paintings" / f"{entry['painting']}.png"
        if not students:
            missing.append(f"{style}: no {models / style}.onnx")
        elif not painting.is_file():
            missing.append(f"{style}: no {painting} (run configs/bundled/build.sh)")
        else:
            cases.append(StyleCase(style, entry["teacher"].format(painting=painting), students))
    return cases, missing


def _extra_students(style: str) -> list[Path]:
    folder = os.environ.get("STYLECAST_EXTRA_STUDENTS")
    return sorted(Path(folder).glob(f"{style}.*.onnx")) if folder else []


def quick_cases() -> tuple[list[StyleCase], list[str]]:
    from stylecast.daemon.config import BUNDLED_MODELS, DEFAULT_BUNDLED_STYLE

    stand_in = BUNDLED_MODELS / "fp32" / f"{DEFAULT_BUNDLED_STYLE}.onnx"
    return [StyleCase("multistyle:19", "multistyle:19",
                      [Student("multistyle:19", "compared", stand_in)])], []


def held_out_photos(quick: bool) -> list[np.ndarray]:
    from stylecast.training.teachers.cache import resize_to_short_side

    if quick:
        from skimage import data

        return [resize_to_short_side(image, QUICK_SHORT_SIDE)
                for image in (data.astronaut(), data.chelsea(), data.coffee())]
    from PIL import Image

    work = Path(os.environ.get("STYLECAST_BUNDLED_WORK", ROOT / "runs" / "bundled"))
    files = sorted(p for p in (work / "photos" / "heldout").iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [resize_to_short_side(np.asarray(Image.open(p).convert("RGB")), HELD_OUT_SHORT_SIDE)
            for p in files]


def _real_clip() -> tuple[list[np.ndarray], object]:
    """scikit-image's animated GIF, upscaled, and the flow that brings each frame back onto
    the one before it (OpenCV's Farneback, the convention training.temporal uses)."""
    import cv2
    import torch
    from PIL import Image, ImageSequence
    from skimage import data

    gif = Image.open(Path(data.__file__).parent / "no_time_for_that_tiny.gif")
    frames = []
    for frame in ImageSequence.Iterator(gif):
        rgb = frame.convert("RGB")
        size = (rgb.width * CLIP_SCALE // 4 * 4, rgb.height * CLIP_SCALE // 4 * 4)
        frames.append(np.asarray(rgb.resize(size, Image.BICUBIC)))
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    flows = [cv2.calcOpticalFlowFarneback(gray[t], gray[t + 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
             for t in range(len(frames) - 1)]
    return frames, torch.from_numpy(np.stack(flows))


# --- measuring ---------------------------------------------------------------------------------


def _measure_style(case: StyleCase, photos, clip, flows, inception, quick: bool) -> list[dict]:
    from stylecast.training.quality import clip_warping_error, pan_warping_error, teacher_gap
    from stylecast.training.teachers.loader import load_teacher

    teacher = load_teacher(case.teacher_source)
    render = teacher_stylizer(teacher)
    teacher_outputs = [render(photo) for photo in photos]
    pan_photos = photos[:PAN_PHOTOS]
    rows = [{"style": case.style, "model": "teacher", "gmacs": None,
             "ms": _ms_per_frame(render, quick),
             "pan_warp": pan_warping_error(pan_photos, render),
             "clip_warp": clip_warping_error(clip, flows, render)}]
    rows += _repeatability_rows(case.style, render, photos, teacher_outputs, inception)
    for student in case.students:
        stylize = student_stylizer(student.path)
        gap = teacher_gap(photos, [stylize(photo) for photo in photos], teacher_outputs,
                          inception)
        contract = stylize.contract
        rows.append({"style": case.style, "model": f"{contract.preset} {contract.precision}",
                     "role": student.role,
                     "gmacs": _student_gmacs(stylize), "ms": _ms_per_frame(stylize, quick),
                     "d_input": gap.d_input, "d_model": gap.d_student,
                     "gap_closed": gap.gap_closed, "kid": gap.kid,
                     "pan_warp": pan_warping_error(pan_photos, stylize),
                     "clip_warp": clip_warping_error(clip, flows, stylize)})
    return rows


def repeatability_stylizers(render: Stylize) -> dict[str, Stylize]:
    """The teacher on a photo a camera could equally have taken, and its average over small
    moves: the near-copies a student's gap closed is read against."""
    from stylecast.training.quality import (
        averaged_stylizer,
        moved_photo_stylizer,
        noisy_photo_stylizer,
    )

    return {REPEAT_MOVED: moved_photo_stylizer(render, 1, 1),
            REPEAT_NOISY: noisy_photo_stylizer(render, sigma=2.0),
            REPEAT_AVERAGE: averaged_stylizer([moved_photo_stylizer(render, down, right)
                                               for down, right in SMALL_MOVES])}


def _repeatability_rows(style: str, render, photos, teacher_outputs, inception) -> list[dict]:
    from stylecast.training.quality import teacher_gap

    rows = []
    for label, stylize in repeatability_stylizers(render).items():
        gap = teacher_gap(photos, [stylize(photo) for photo in photos], teacher_outputs,
                          inception)
        rows.append({"style": style, "model": label, "role": "repeatability",
                     "d_input": gap.d_input, "d_model": gap.d_student,
                     "gap_closed": gap.gap_closed, "kid": gap.kid})
    return rows


def teacher_stylizer(teacher):
    from stylecast.training.imaging import image_to_tensor, tensor_to_image

    def render(photo: np.ndarray) -> np.ndarray:
        return tensor_to_image(teacher.render(image_to_tensor(photo)))

    return render


def student_stylizer(path: Path):
    from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine

    return OnnxEngine(path, threads=os.cpu_count())


def _student_gmacs(engine) -> float | None:
    from stylecast.training.complexity import count_macs
    from stylecast.training.presets import PRESETS, build_generator

    preset = engine.contract.preset
    if preset not in PRESETS:
        return None
    return count_macs(build_generator(preset), *COST_SIZE) / 1e9


def _ms_per_frame(stylize, quick: bool) -> float:
    from skimage import data

    from stylecast.training.teachers.cache import resize_to_short_side

    frame = resize_to_short_side(data.astronaut(), 96 if quick else COST_SIZE[0])
    stylize(frame)  # warm-up
    runs = []
    for _ in range(1 if quick else 5):
        start = time.perf_counter()
        stylize(frame)
        runs.append((time.perf_counter() - start) * 1000)
    time.sleep(0.5)  # let ONNX Runtime's spinning threads settle before the next block
    return float(np.median(runs))


# --- judging -----------------------------------------------------------------------------------


def _targets(rows: list[dict]) -> list[Target]:
    targets = []
    teachers = {row["style"]: row for row in rows if row["model"] == "teacher"}
    for row in rows:
        wanted = GAP_TARGETS.get(row.get("role"))
        if wanted is not None:
            targets.append(Target(f"{row['style']} {row['model']} ({row['role']}) gap closed",
                                  f">= {wanted}", round(row["gap_closed"], 3),
                                  row["gap_closed"] >= wanted))
        if row.get("role") not in (None, "repeatability"):
            teacher_warp = teachers[row["style"]]["pan_warp"]
            targets.append(Target(f"{row['style']} {row['model']} pan warp / teacher's", "<= 1",
                                  round(row["pan_warp"] / teacher_warp, 3),
                                  row["pan_warp"] <= teacher_warp))
    return targets


def _notes(photos: list[np.ndarray], quick: bool, missing: list[str]) -> list[str]:
    notes = [
        f"{len(photos)} held-out photos (configs/bundled: no style trains on them), shorter "
        f"side {photos[0].shape[0] if photos else 0} px. d(.): mean Euclidean distance of "
        "InceptionV3 pool features (2048-d, the FID network's last layer, which no training "
        "loss uses) to the teacher's output of the same photo; gap closed = 1 - d(model) / "
        "d(input). KID: student outputs against teacher outputs.",
        f"pan warp: warping error (mean |frame t - warp(frame t+1)| on 0-255) of the stylized "
        f"clip over a 2 px/frame pan across {PAN_PHOTOS} photos; clip warp: the same on "
        f"scikit-image's animated GIF upscaled {CLIP_SCALE}x, with Farneback flow.",
        "GMAC and ms/frame at 640x480 (ONNX Runtime CPU for students; the teacher as "
        "stylecast-train runs it).",
    ]
    notes.append("repeatability: the teacher's own gap closed when the photo is moved by 1 px "
                 "(its output moved back) or carries Gaussian noise of sigma 2 on 0-255: the "
                 "same picture with its strokes placed anew, which the metric scores like a "
                 "student's. Read a student's gap closed against these, not against 1. The "
                 "average over 11 moves of 0-3 px (down, right) is what L1 pulls a student "
                 "towards where the teacher's strokes follow the pixel grid, not the picture.")
    notes.append("role: cpu default = daemon/models/NAME.onnx (INT8, what the daemon runs "
                 "on a CPU), cpu fp32 = daemon/models/fp32/, jetson = daemon/models/small/, "
                 "compared = another student trained with the same recipe, not shipped.")
    if quick:
        notes.insert(0, "--quick: the default bundled style stands in as a student of "
                        "multistyle:19 to check the code runs; the figures mean nothing.")
    notes += [f"not measured: {line}" for line in missing]
    return notes
