"""`stylecast-train distill` with every kind of teacher, end to end as a user runs it (a
subprocess of the installed command), and its one-line errors (exit 78, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecast.core.errors import EX_CONFIG, EX_USAGE
from stylecast.training.checkpoint import LAST, load_generator
from stylecast.training.cli import main as train_main

from support.onnx_teachers import save_image_model

BIN = Path(sys.executable).parent
# Tiny and fast: 64 px crops of photos rendered at 64 px, one variant, no Inception losses,
# one ONNX Runtime thread (the test machine's cores are shared).
TINY = ["--steps", "3", "--size", "64", "--batch-size", "2", "--device", "cpu",
        "--set", "distill.scales=[64]", "--set", "distill.variants=1",
        "--set", "loss.inception_features=0", "--set", "loss.inception_gram=0",
        "--set", "teacher.threads=1"]


def distill_argv(teacher: list[str], folders: Path, run: Path, cache: Path,
                 *extra: str) -> list[str]:
    return ["distill", *teacher, "--content", str(folders / "content"), "--out", str(run),
            *TINY, "--set", f"teacher.cache_dir={cache}", *extra]


def run_command(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "stylecast-train"), *argv], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def painting(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("paintings") / "coffee.png"
    Image.fromarray(data.coffee()[100:228, 200:328]).save(path)
    return path


@pytest.fixture(scope="module")
def onnx_teacher(tmp_path_factory) -> Path:
    return save_image_model(tmp_path_factory.mktemp("onnx") / "tiny.onnx", last="sigmoid")


@pytest.mark.parametrize("kind", ["multistyle", "style image", "onnx"])
def test_distill_runs_end_to_end(image_folders, tmp_path, painting, onnx_teacher, kind):
    teacher, source, style = {
        "multistyle": (["--teacher", "multistyle:19"], "multistyle:19", "multistyle19"),
        "style image": (["--style-image", str(painting)], f"style-image:{painting}", "coffee"),
        "onnx": (["--teacher", str(onnx_teacher)], str(onnx_teacher), "tiny"),
    }[kind]
    run, cache = tmp_path / "run", tmp_path / "cache"
    done = run_command(distill_argv(teacher, image_folders, run, cache))
    assert done.returncode == 0, done.stderr[-2000:]

    _generator, info = load_generator(run / LAST)
    assert (info.mode, info.step, info.style) == ("distill", 3, style)
    recorded = json.loads((run / "options.json").read_text())["teacher"]
    assert recorded["source"] == source and recorded["key"]
    renders = list(cache.rglob("*.png"))
    assert len(renders) == 4  # the 4 content photos at the one scale, one variant
    assert all(path.parent.parent.name == recorded["key"] for path in renders)
    sample = np.asarray(Image.open(sorted((run / "samples").iterdir())[-1]))
    assert sample.shape[1] == 3 * 64 + 2 * 4  # photo | student | teacher


def test_resume_keeps_the_teacher(image_folders, tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    first = distill_argv(["--teacher", "multistyle:7"], image_folders, run, cache)
    assert train_main(first) == 0
    resume = [*first, "--resume", "--steps", "4"]
    assert train_main(resume) == 0
    assert load_generator(run / LAST)[1].step == 4


def test_resume_with_another_teacher_names_both(image_folders, tmp_path, capsys):
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert train_main(distill_argv(["--teacher", "multistyle:7"], image_folders, run,
                                   cache)) == 0
    before = (run / LAST).read_bytes()
    capsys.readouterr()
    argv = distill_argv(["--teacher", "multistyle:8"], image_folders, run, cache, "--resume")
    assert train_main(argv) == EX_CONFIG
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "the run distills 'multistyle:7', not 'multistyle:8'" in error
    assert "resume with --teacher multistyle:7" in error
    assert (run / LAST).read_bytes() == before


def bad_teachers(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((40, 200, 3), np.uint8)).save(tiny)
    two_inputs = save_image_model(tmp_path / "two.onnx", extra_inputs=["mask"])
    return {
        "multistyle index": (["--teacher", "multistyle:30"],
                             "teacher 'multistyle:30': style '30' is not one of 0..25"),
        "tiny style image": (["--style-image", str(tiny)], f"{tiny}: style image is 200x40"),
        "two-input onnx": (["--teacher", str(two_inputs)], f"{two_inputs}: inputs 'image', "
                           "'mask'"),
        "missing file": (["--teacher", str(tmp_path / "none.pth")], "no such teacher file"),
        "option for another kind": (["--teacher", "multistyle:1", "--set",
                                     "teacher.layout=NHWC"], "teacher.layout describes"),
    }


@pytest.mark.parametrize("case", ["multistyle index", "tiny style image", "two-input onnx",
                                  "missing file", "option for another kind"])
def test_bad_teacher_is_one_line_and_writes_nothing(image_folders, tmp_path, capsys, case):
    teacher, problem = bad_teachers(tmp_path)[case]
    run, cache = tmp_path / "run", tmp_path / "cache"
    assert train_main(distill_argv(teacher, image_folders, run, cache)) == EX_CONFIG
    error = capsys.readouterr().err.strip()
    assert error.startswith("stylecast-train: error: ") and "\n" not in error
    assert problem in error
    assert not run.exists() and not cache.exists()


def test_bad_teacher_exit_code_from_the_command(image_folders, tmp_path):
    run = tmp_path / "run"
    done = run_command(distill_argv(["--teacher", "multistyle:26"], image_folders, run,
                                    tmp_path / "cache"))
    assert done.returncode == EX_CONFIG
    assert done.stderr.strip().splitlines() == [
        "stylecast-train: error: teacher 'multistyle:26': style '26' is not one of 0..25 "
        "(expected multistyle:N or multistyle:N=W,M=W)"]
    assert not run.exists()


@pytest.mark.parametrize(("teacher", "problem"), [
    (["--teacher", "multistyle:1", "--style-image", "x.png"],
     "argument --style-image: not allowed with argument --teacher"),
    ([], "one of the arguments --teacher --style-image is required"),
])
def test_teacher_flags_are_one_of_two(image_folders, tmp_path, capsys, teacher, problem):
    with pytest.raises(SystemExit) as caught:
        train_main(distill_argv(teacher, image_folders, tmp_path / "run", tmp_path / "c"))
    assert caught.value.code == EX_USAGE
    assert problem in capsys.readouterr().err
