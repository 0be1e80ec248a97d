"""How close a student comes to its teacher, and how steady it is on video.

Everything here takes stylizers as plain functions, uint8 (H, W, 3) RGB in and out, so a torch
student, an ONNX student at any precision and a teacher are measured the same way.

- Teacher distance: the mean Euclidean distance between InceptionV3 pool features (2048-d, the
  FID network's last layer, which no training loss uses) of an image and of the teacher's
  output for the same photo. **Gap closed** = 1 - d(student) / d(input): 0 for a student that
  returns its input unchanged, 1 for one that matches the teacher exactly.
- KID between the student's and the teacher's outputs over the same photos.
- Repeatability: the teacher's own gap closed when its photo is moved by one pixel or carries
  camera-like noise. A teacher with strided layers is not shift-equivariant, so the same picture
  gets its strokes placed anew: what even a perfect copy of the teacher could not match, and so
  the ceiling a student's gap closed is read against. The average of the teacher over small
  moves is what pixel losses pull a student towards.
- Warping error: how much a stylized clip changes beyond what the motion explains, on the
  [0, 255] scale. On a synthetic pan the motion is known exactly; on a real clip the caller
  brings the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from stylecast.training.imaging import image_to_tensor, tensor_to_image
from stylecast.training.metrics import InceptionFeatures, kid
from stylecast.training.temporal import pan_sequence, warping_error

Stylize = Callable[[np.ndarray], np.ndarray]

PAN_FRAMES = 8
PAN_STEP_PX = 2.0


@dataclass(frozen=True)
class TeacherGap:
    d_input: float
    d_student: float
    gap_closed: float
    kid: float
    kid_std: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def feature_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Mean over rows of the Euclidean distance between paired feature vectors."""
    if features_a.shape != features_b.shape:
        raise ValueError(f"feature sets differ in shape: {features_a.shape} vs "
                         f"{features_b.shape}")
    return float(np.linalg.norm(features_a - features_b, axis=1).mean())


def gap_closed(d_input: float, d_student: float) -> float:
    if d_input <= 0:
        raise ValueError("the teacher's output equals its input: there is no gap to close")
    return 1.0 - d_student / d_input


def teacher_gap(photos: Sequence[np.ndarray], student_outputs: Sequence[np.ndarray],
                teacher_outputs: Sequence[np.ndarray], inception: InceptionFeatures) -> TeacherGap:
    """Distances of the inputs and of the student's outputs to the teacher's, per photo."""
    if not len(photos) == len(student_outputs) == len(teacher_outputs) >= 2:
        raise ValueError("need the same number (>= 2) of photos, student and teacher outputs")
    inputs, students, teachers = (inception(images) for images in
                                  (photos, student_outputs, teacher_outputs))
    d_input = feature_distance(inputs, teachers)
    d_student = feature_distance(students, teachers)
    kid_mean, kid_std = kid(students, teachers)
    return TeacherGap(d_input, d_student, gap_closed(d_input, d_student), kid_mean, kid_std)


def moved_photo_stylizer(stylize: Stylize, down: int = 1, right: int = 1) -> Stylize:
    """`stylize` run on the photo moved `down` and `right` pixels (the uncovered edges
    reflected), its output moved back; the last rows and columns, which the moved photo no
    longer holds, repeat their neighbours. A shift-equivariant stylizer returns its own output
    again, but for those edge rows."""
    if min(down, right) < 0 or down == right == 0:
        raise ValueError(f"a move needs down, right >= 0 and not both 0, not ({down}, {right})")

    def stylize_moved(photo: np.ndarray) -> np.ndarray:
        height, width = photo.shape[:2]
        moved = np.pad(photo, ((down, 0), (right, 0), (0, 0)), mode="reflect")
        output = stylize(np.ascontiguousarray(moved[:height, :width]))
        back = output[down:, right:]
        return np.pad(back, ((0, down), (0, right), (0, 0)), mode="edge")

    return stylize_moved


def averaged_stylizer(stylizers: Sequence[Stylize]) -> Stylize:
    """The pixel mean of several stylizers' outputs. Over a teacher's small moves, it is what a
    student trained with pixel losses converges to where the teacher's strokes depend on the
    pixel grid rather than on the picture."""
    if not stylizers:
        raise ValueError("nothing to average")

    def stylize_average(photo: np.ndarray) -> np.ndarray:
        total = sum(stylize(photo).astype(np.float32) for stylize in stylizers)
        return np.rint(total / len(stylizers)).astype(np.uint8)

    return stylize_average


def noisy_photo_stylizer(stylize: Stylize, sigma: float = 2.0, seed: int = 0) -> Stylize:
    """`stylize` run on the photo plus Gaussian noise of `sigma` (0-255 scale, rounded back to
    8 bits): a camera never delivers the same frame twice."""
    rng = np.random.default_rng(seed)

    def stylize_noisy(photo: np.ndarray) -> np.ndarray:
        noise = rng.normal(0.0, sigma, photo.shape)
        return stylize(np.clip(np.rint(photo + noise), 0, 255).astype(np.uint8))

    return stylize_noisy


def pan_warping_error(photos: Sequence[np.ndarray], stylize: Stylize,
                      frames: int = PAN_FRAMES, step: float = PAN_STEP_PX) -> float:
    """Mean warping error of `stylize` over a horizontal camera pan across each photo."""
    errors = []
    for photo in photos:
        clip, flows = pan_sequence(image_to_tensor(photo), frames=frames, step=step)
        stylized = [stylize(tensor_to_image(frame)) for frame in clip]
        errors.append(warping_error(_as_clip(stylized), flows))
    return float(np.mean(errors))


def clip_warping_error(frames: Sequence[np.ndarray], flows: torch.Tensor,
                       stylize: Stylize) -> float:
    """Warping error of `stylize` on a real clip; flows[t] takes frame t+1 back onto frame t
    (the convention of training.temporal.warp), (T - 1, H, W, 2) in pixels."""
    return warping_error(_as_clip([stylize(frame) for frame in frames]), flows)


def _as_clip(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.cat([image_to_tensor(image) for image in images])
