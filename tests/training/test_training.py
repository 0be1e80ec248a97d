"""stylecast-train fit and distill, end to end on real photos: checkpoints, logs, samples, resume
after SIGKILL and SIGTERM, clear errors. Runs are tiny (32-64 px crops, a few steps) to stay fast
on 2 CPU cores; the training quality itself is measured by the distillation and flicker tests."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from stylecast.core.errors import EX_CONFIG, EX_FAILURE
from stylecast.training.checkpoint import LAST, load_checkpoint, load_generator
from stylecast.training.cli import main as train_main

from support.checkpoints import save_nano_checkpoint
from support.small_disk import DEV_FULL, needs_dev_full, small_disk

BIN = Path(sys.executable).parent
TINY = ["--size", "32", "--batch-size", "2", "--device", "cpu"]  # small crops, fast steps


def fit_args(folders: Path, run: Path, steps: int, *extra: str) -> list[str]:
    return ["fit", "--content", str(folders / "content"), "--style", str(folders / "style"),
            "--out", str(run), "--steps", str(steps), *TINY, *extra]


def csv_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_fit_writes_checkpoint_samples_and_logs(image_folders, tmp_path):
    run = tmp_path / "run"
    every = ["--set", "run.log_every=2", "--set", "run.sample_every=3",
             "--set", "run.checkpoint_every=3"]
    assert train_main(fit_args(image_folders, run, 6, *every)) == 0

    generator, info = load_generator(run / LAST)
    assert (info.mode, info.step, info.preset, info.style) == ("fit", 6, "swift", "style")
    with torch.no_grad():
        assert generator(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)

    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["step_0000003.png", "step_0000006.png"]
    width, height = Image.open(run / "samples" / grids[-1]).size
    assert (width, height) == (2 * 32 + 4, 4 * 32 + 3 * 4)  # input | output, 4 sample photos

    rows = csv_rows(run)
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert {"g_adv", "cycle", "identity", "temporal", "d_style", "d_content", "lr",
            "it_per_s"} <= set(rows[0])
    assert all(float(r["it_per_s"]) > 0 for r in rows)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((run / "options.json").read_text())["optim"]["steps"] == 6


def test_resume_continues_step_optimizer_and_schedule(image_folders, tmp_path):
    run = tmp_path / "run"
    assert train_main(fit_args(image_folders, run, 4, "--set", "run.log_every=2")) == 0
    assert train_main(fit_args(image_folders, run, 8, "--resume")) == 0

    payload = load_checkpoint(run / LAST)
    assert payload["step"] == 8
    adam = payload["train_state"]["optimizers"]["generators"]["state"]
    assert {float(state["step"]) for state in adam.values()} == {8.0}
    rows = csv_rows(run)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    # steps=8, decay from half-way: lr(6) = 2e-4 * (8 - 6) / (8 - 4)
    assert float(rows[2]["lr"]) == pytest.approx(1e-4)
    assert payload["options"]["optim"]["steps"] == 8


def test_existing_run_is_not_overwritten(image_folders, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(fit_args(image_folders, run, 1)) == 0
    before = (run / LAST).read_bytes()
    assert train_main(fit_args(image_folders, run, 1)) == EX_CONFIG
    assert "already holds a run" in capsys.readouterr().err
    assert (run / LAST).read_bytes() == before


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_old_checkpoint(image_folders, tmp_path,
                                                                            capsys):
    """The issue's case: a resumed run whose next checkpoint does not fit (about 69 MB for nano:
    see docs/training.md) on a real 100 MB tmpfs."""
    with small_disk(tmp_path / "disk", "100m") as disk:
        run = disk / "run"
        assert train_main(fit_args(image_folders, run, 1)) == 0
        before = (run / LAST).read_bytes()
        capsys.readouterr()
        assert train_main(fit_args(image_folders, run, 2, "--resume")) == EX_FAILURE
        err = capsys.readouterr().err
        assert (run / LAST).read_bytes() == before
        assert sorted(p.name for p in run.glob(f".{LAST}.*")) == []  # no temporary left
    assert "Traceback" not in err and "inline_container" not in err
    line = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"stylecast-train: error: {re.escape(str(run / LAST))}: disk full: about "
                        r"6\d\.\d MB needed, \d+\.\d MB free in .*; the old file is unchanged; "
                        r"free some space and run it again", line), line


@needs_dev_full()
def test_torch_save_onto_a_full_device_is_a_disk_full_error(tmp_path, monkeypatch):
    """Needs no mount: torch.save writes into /dev/full (every write ENOSPC) and wraps the
    OSError in its RuntimeError, as it does on a full disk; the checkpoint code sees through it."""
    import builtins

    from stylecast.core.errors import DiskFullError
    from stylecast.training import checkpoint

    real_open = builtins.open
    monkeypatch.setattr(checkpoint, "open", lambda path, mode: real_open(DEV_FULL, mode),
                        raising=False)
    target = tmp_path / LAST
    with pytest.raises(DiskFullError, match=rf"^{re.escape(str(target))}: disk full: about "
                       r"33\d\.\d kB needed"):  # the nano generator alone
        save_nano_checkpoint(target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": "missing"}, "content folder .*missing/?: no such folder"),
        ({"content": "empty"}, "content folder .*empty/?: no .jpg"),
        ({"resume": True}, "nothing to resume"),
        ({"config": "[loss]\nganz = 1\n"}, r"key 'loss.ganz' is not a known key"),
        ({"config": "[data]\nsize = 30\n"}, r"key 'data.size' = 30"),
        ({"config": "not toml ["}, "not valid TOML"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_78(image_folders, tmp_path, capsys, change,
                                                message):
    (tmp_path / "empty").mkdir()
    content = tmp_path / change["content"] if "content" in change else image_folders / "content"
    argv = ["fit", "--content", str(content), "--style", str(image_folders / "style"),
            "--out", str(tmp_path / "run"), "--steps", "1", "--device", "cpu"]
    if change.get("resume"):
        argv.append("--resume")
    if "config" in change:
        (tmp_path / "bad.toml").write_text(change["config"])
        argv += ["--config", str(tmp_path / "bad.toml")]
    else:
        argv += ["--size", "32"]
    assert train_main(argv) == EX_CONFIG
    err_lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith("stylecast-train: error:")]
    assert len(err_lines) == 1
    assert re.search(message, err_lines[0]), err_lines[0]
    assert not (tmp_path / "run" / LAST).exists()


def _start_fit(folders: Path, run: Path, steps: int) -> subprocess.Popen[str]:
    argv = [str(BIN / "stylecast-train"), *fit_args(folders, run, steps),
            "--set", "run.checkpoint_every=2", "--set", "run.sample_every=1000"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(process: subprocess.Popen[str], run: Path, min_step: int) -> int:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        if (run / LAST).exists() and (step := load_checkpoint(run / LAST)["step"]) >= min_step:
            return step
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_mid_run_then_resume(image_folders, tmp_path):
    run = tmp_path / "run"
    process = _start_fit(image_folders, run, 10_000)
    try:
        _wait_for_checkpoint(process, run, min_step=4)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    killed_at = load_checkpoint(run / LAST)["step"]  # intact, readable
    assert killed_at >= 4
    assert train_main(fit_args(image_folders, run, killed_at + 2, "--resume")) == 0
    assert load_checkpoint(run / LAST)["step"] == killed_at + 2
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert max(int(r["step"]) for r in csv_rows(run)) == killed_at + 2


def test_sigterm_saves_a_checkpoint_and_exits(image_folders, tmp_path):
    run = tmp_path / "run"
    process = _start_fit(image_folders, run, 10_000)
    try:
        seen = _wait_for_checkpoint(process, run, min_step=2)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert "interrupted at step" in err
    assert load_checkpoint(run / LAST)["step"] >= seen


def test_multi_process_run_under_torchrun(image_folders, tmp_path):
    """The same command under torchrun: two CPU processes (gloo), one checkpoint from rank 0."""
    run = tmp_path / "run"
    argv = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2",
            str(BIN / "stylecast-train"), *fit_args(image_folders, run, 4),
            "--set", "run.sample_every=2", "--set", "run.log_every=2"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cpu x2" in result.stderr
    assert load_checkpoint(run / LAST)["step"] == 4
    assert [int(r["step"]) for r in csv_rows(run)] == [2, 4]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png",
                                                                   "step_0000004.png"]


def test_optional_vgg_losses_use_a_local_weights_file(image_folders, tmp_path):
    """VGG-16 perceptual/style losses from a user's file (features.* keys as torchvision saves
    them; random weights made here, since none can be downloaded)."""
    from stylecast.training.vgg import VGG16Features

    weights = tmp_path / "vgg16.pth"
    torch.save(VGG16Features().state_dict(), weights)
    run = tmp_path / "run"
    extra = ["--set", "loss.content=1.0", "--set", "loss.style=100.0",
             "--set", f"loss.vgg_weights='{weights}'", "--set", "run.log_every=2"]
    assert train_main(fit_args(image_folders, run, 2, *extra)) == 0
    (row,) = csv_rows(run)
    assert float(row["content"]) > 0 and float(row["style"]) > 0


def test_missing_vgg_weights_file_is_one_line(image_folders, tmp_path, capsys):
    extra = ["--set", "loss.content=1.0", "--set", f"loss.vgg_weights='{tmp_path}/none.pth'"]
    assert train_main(fit_args(image_folders, tmp_path / "run", 2, *extra)) == EX_CONFIG
    assert "none.pth" in capsys.readouterr().err


def test_eval_prints_a_readable_report(image_folders, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(fit_args(image_folders, run, 1)) == 0
    capsys.readouterr()
    argv = ["eval", str(run / LAST), "--content", str(image_folders / "heldout"),
            "--style", str(image_folders / "style"), "--size", "64", "--frames", "3",
            "--device", "cpu"]
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    assert "preset swift, style 'style', step 1, 4 content / 3 style images at 64px" in out
    for word in ("FID", "KID", "flicker (warping error, 0-255): output"):
        assert word in out


def test_eval_needs_two_images_per_folder(image_folders, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_main(fit_args(image_folders, run, 1)) == 0
    single = tmp_path / "single"
    single.mkdir()
    (single / "one.png").write_bytes((image_folders / "style" / "brick.png").read_bytes())
    argv = ["eval", str(run / LAST), "--content", str(single), "--style",
            str(image_folders / "style"), "--size", "64", "--device", "cpu"]
    assert train_main(argv) == EX_CONFIG
    assert "need at least 2 images, found 1" in capsys.readouterr().err


def test_distilled_student_keeps_its_stylecast_teachers_style(image_folders, tmp_path):
    teacher_run = tmp_path / "teacher"
    assert train_main(fit_args(image_folders, teacher_run, 1, "--set", "model.style_name=ink")) == 0
    student_run = tmp_path / "student"
    argv = ["distill", "--teacher", str(teacher_run / LAST), "--content",
            str(image_folders / "content"), "--out", str(student_run), "--steps", "1", *TINY,
            "--set", "distill.scales=[48]"]
    assert train_main(argv) == 0
    _generator, info = load_generator(student_run / LAST)
    assert (info.mode, info.style) == ("distill", "ink")
