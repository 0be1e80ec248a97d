"""What a run leaves behind besides checkpoints: a CSV log, TensorBoard scalars, sample grids.

    RUN/log.csv            one row per logged step: step, losses, lr, it/s
    RUN/tensorboard/       the same scalars for `tensorboard --logdir RUN`
    RUN/samples/step_N.png a grid, one row per sample image: input | output [| teacher]

On --resume, rows and events past the resumed step (written after the last checkpoint by a run
that was killed) are dropped, so the logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylecast.core.atomic import atomic_write_bytes, atomic_write_text
from stylecast.training.imaging import tensor_to_image

CSV_NAME = "log.csv"


class RunLog:
    def __init__(self, run_dir: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.csv_path = run_dir / CSV_NAME
        self._rows = _read_rows(self.csv_path, until_step=start_step)
        self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self._tensorboard.add_scalar(name, value, step)
        self._rows.append({"step": step, **values})
        self._write_csv()

    def samples(self, step: int, rows: Sequence[Sequence[torch.Tensor]]) -> Path:
        """Save a grid: each row is a list of (3, H, W) images in [-1, 1] side by side."""
        grid = sample_grid(rows)
        path = self.run_dir / "samples" / f"step_{step:07d}.png"
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        atomic_write_bytes(path, buffer.getvalue())
        self._tensorboard.add_image("samples", grid, step, dataformats="HWC")
        return path

    def close(self) -> None:
        self._tensorboard.close()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self._rows for key in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self._rows)
        atomic_write_text(self.csv_path, out.getvalue())


def sample_grid(rows: Sequence[Sequence[torch.Tensor]], gap: int = 4) -> np.ndarray:
    """(H, W, 3) uint8 grid of images with a white gap between them."""
    images = [[tensor_to_image(image) for image in row] for row in rows]
    height = max(image.shape[0] for row in images for image in row)
    width = max(image.shape[1] for row in images for image in row)
    columns = max(len(row) for row in images)
    grid = np.full((len(images) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255,
                   dtype=np.uint8)
    for r, row in enumerate(images):
        for c, image in enumerate(row):
            top, left = r * (height + gap), c * (width + gap)
            grid[top : top + image.shape[0], left : left + image.shape[1]] = image
    return grid


def _read_rows(path: Path, until_step: int) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= until_step]
