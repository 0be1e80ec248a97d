"""configs/bundled/gallery.py without models: which styles it draws, the frames it feeds them,
and the layout of the overview and the per-style pages, on pictures made here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "configs" / "bundled"))
import gallery


def work_folder(tmp_path: Path) -> Path:
    """A bundled work folder holding the great-wave painting and four held-out photos."""
    work = tmp_path / "work"
    (work / "sources" / "paintings").mkdir(parents=True)
    Image.new("RGB", (300, 200), "navy").save(work / "sources" / "paintings" / "great-wave.png")
    (work / "photos" / "heldout").mkdir(parents=True)
    for i, size in enumerate([(1024, 576), (512, 512), (680, 340), (800, 600)]):
        Image.new("RGB", size, (60 * i, 100, 50)).save(work / "photos" / "heldout" / f"p{i}.jpg")
    return work


def fake_rendered(style: gallery.Style, inputs: dict[str, np.ndarray]) -> gallery.Rendered:
    keys = ["teacher", "cpu"] + (["small"] if style.small else [])
    outputs = {name: {"input": frame, **{key: 255 - frame for key in keys}}
               for name, frame in inputs.items()}
    labels = {"input": "input", **{key: key for key in keys}}
    return gallery.Rendered(style, labels, outputs)


def test_styles_without_a_student_are_skipped_with_one_line(tmp_path, capsys):
    work = work_folder(tmp_path)
    students = tmp_path / "students"
    (students / "small").mkdir(parents=True)
    (students / "great-wave.onnx").write_bytes(b"stand-in")
    (students / "night-cafe.onnx").write_bytes(b"stand-in")  # its painting is missing
    styles = gallery.bundled_styles(students, work)
    assert [s.name for s in styles] == ["great-wave"]
    assert styles[0].small is None
    assert styles[0].teacher == f"style-image:{work}/sources/paintings/great-wave.png"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert any(line.startswith("night-cafe: skipped, no painting") for line in lines)
    assert any(line.startswith("kandinsky: skipped, its student") for line in lines)


def test_inputs_are_the_card_then_camera_frames(tmp_path):
    inputs = gallery.gallery_inputs(work_folder(tmp_path), ("p3", "absent"))
    assert list(inputs) == [gallery.CARD, "p3", "p0"]  # a missing photo: the next one stands in
    assert all(frame.shape == (*gallery.FRAME, 3) for frame in inputs.values())
    assert all(frame.flags.writeable for frame in inputs.values())


def test_overview_and_page_layout(tmp_path):
    work = work_folder(tmp_path)
    painting = work / "sources" / "paintings" / "great-wave.png"
    inputs = gallery.gallery_inputs(work, ("p0", "p1", "p2"))
    with_small = gallery.Style("great-wave", painting, "Hokusai", "multistyle:1",
                               tmp_path / "a.onnx", tmp_path / "small" / "a.onnx")
    without = gallery.Style("other", painting, "Someone", "multistyle:2", tmp_path / "b.onnx",
                            None)
    rendered = [fake_rendered(s, inputs) for s in (with_small, without)]
    overview = gallery.overview(rendered, dict(list(inputs.items())[:3]))
    columns = 1 + len(gallery.OVERVIEW_COLUMNS)  # the painting, then the outputs
    assert overview.width == columns * gallery.CELL[0] + 3 * gallery.GROUP_GAP
    assert overview.height > 3 * gallery.CELL[1]  # the inputs' row and one row per style
    page = gallery.style_page(rendered[1])
    assert page.width == 3 * gallery.CELL[0]  # input | teacher | CPU student: no small column
    assert page.height > len(inputs) * gallery.CELL[1]


def test_no_student_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLECAST_BUNDLED_WORK", str(work_folder(tmp_path)))
    out = tmp_path / "gallery.png"
    assert gallery.main([str(out), "--students", str(tmp_path / "none")]) == 1
    assert not out.exists()
    assert "nothing written" in capsys.readouterr().out


def test_png_is_written_whole(tmp_path):
    out = tmp_path / "docs" / "gallery.png"
    gallery.save_png(Image.new("RGB", (8, 6), "red"), out)
    assert Image.open(out).size == (8, 6)
    assert [p.name for p in out.parent.iterdir()] == ["gallery.png"]
