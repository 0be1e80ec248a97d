"""Training measurably does what it claims, on real photos: distillation brings the student's
outputs closer to the teacher's, and the temporal regularizer lowers flicker. Measured through
`stylecast-train eval` on held-out photos. Runs are small (64 px crops, 200 steps) for CI.

No trained teacher can be downloaded here: the distillation teacher is a CycleGAN ResnetGenerator
that the test first trains on a known toy style; the flicker test uses a randomly initialised
one, whose outputs flicker badly, to show the regularizer counteracting a flickery teacher."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch.nn import functional as F

from stylecast.training.checkpoint import LAST
from stylecast.training.cli import main as train_main
from stylecast.training.data import ImageFolder
from stylecast.training.teachers.cyclegan import ResnetGenerator

STEPS = 200


SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def toy_style(x: torch.Tensor) -> torch.Tensor:
    """A fixed, known "style" for the teacher to learn: sepia toning with boosted contrast."""
    return torch.tanh(2.5 * (torch.einsum("ij,njhw->nihw", SEPIA, (x + 1) / 2) - 0.6))


@pytest.fixture(scope="module")
def trained_teacher(image_folders, tmp_path_factory):
    """A CycleGAN ResnetGenerator (ngf=16, 3 blocks) trained for 150 steps to imitate toy_style
    on the content photos, saved as pytorch-CycleGAN-and-pix2pix saves it. Its outputs carry
    image structure, as a real teacher's do (a random network's are near-constant or noise)."""
    torch.manual_seed(3)
    teacher = ResnetGenerator(ngf=16, n_blocks=3)
    photos = ImageFolder(image_folders / "content", "content", 64)
    optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    for _ in range(150):
        x = torch.stack([photos[i] for i in torch.randint(len(photos), (4,)).tolist()])
        loss = F.l1_loss(teacher(x), toy_style(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2  # it learned the style
    path = tmp_path_factory.mktemp("teacher") / "latest_net_G_A.pth"
    torch.save(teacher.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def cyclegan_teacher(tmp_path_factory):
    """A CycleGAN ResnetGenerator (small: ngf=16, 3 blocks), saved the way that code saves it."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("teacher") / "latest_net_G_A.pth"
    torch.save(ResnetGenerator(ngf=16, n_blocks=3).state_dict(), path)
    return path


def distill(folders, teacher, run, steps: int, *extra: str) -> None:
    argv = ["distill", "--teacher", str(teacher), "--content", str(folders / "content"),
            "--out", str(run), "--steps", str(steps), "--size", "64", "--batch-size", "2",
            "--device", "cpu", "--set", "run.sample_every=1000", "--set", "distill.scales=[64,96]",
            *extra]
    assert train_main(argv) == 0


def evaluate(checkpoint, folders, teacher, capsys) -> dict:
    capsys.readouterr()
    argv = ["eval", str(checkpoint), "--content", str(folders / "heldout"),
            "--style", str(folders / "style"), "--teacher", str(teacher), "--size", "128",
            "--frames", "6", "--device", "cpu", "--json"]
    assert train_main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_distillation_raises_student_psnr_to_teacher(image_folders, trained_teacher, tmp_path,
                                                     capsys):
    run = tmp_path / "run"
    distill(image_folders, trained_teacher, run, 1)
    shutil.copy(run / LAST, tmp_path / "first.ckpt")
    distill(image_folders, trained_teacher, run, STEPS, "--resume")
    before = evaluate(tmp_path / "first.ckpt", image_folders, trained_teacher, capsys)
    after = evaluate(run / LAST, image_folders, trained_teacher, capsys)
    print(f"PSNR to teacher on held-out photos: step 1 {before['psnr_to_teacher']:.2f} dB, "
          f"step {STEPS} {after['psnr_to_teacher']:.2f} dB; SSIM {before['ssim_to_teacher']:.3f}"
          f" -> {after['ssim_to_teacher']:.3f}")
    assert after["step"] == STEPS and before["step"] == 1
    assert after["psnr_to_teacher"] > before["psnr_to_teacher"] + 1.5
    for report in (before, after):
        assert report["fid"] > 0 and report["content_images"] == 4 and report["style_images"] == 3


def test_temporal_regularizer_lowers_flicker(image_folders, cyclegan_teacher, tmp_path, capsys):
    """The same distillation run with and without the regularizer (weight 30, default seed)."""
    distill(image_folders, cyclegan_teacher, tmp_path / "on", STEPS, "--set", "loss.temporal=30")
    distill(image_folders, cyclegan_teacher, tmp_path / "off", STEPS, "--set", "loss.temporal=0")
    with_temporal = evaluate(tmp_path / "on" / LAST, image_folders, cyclegan_teacher, capsys)
    without = evaluate(tmp_path / "off" / LAST, image_folders, cyclegan_teacher, capsys)
    on = with_temporal["flicker"]["output_warping_error"]
    off = without["flicker"]["output_warping_error"]
    print(f"output warping error on pans (0-255): temporal on {on:.3f}, off {off:.3f}")
    assert on < 0.9 * off
