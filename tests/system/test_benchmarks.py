"""`python -m benchmarks --quick` keeps working: run once for real, structure checked, never speed.

The quick mode times tiny frames for a fraction of a second per case, so its figures mean
nothing; what is checked is that every section ran (or says why not), every row has its
figures, and the JSON, PNG and markdown outputs are written and agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `benchmarks` lives in the source checkout, not in the wheel

from benchmarks.frame_copies import CopyAudit  # noqa: E402
from benchmarks.report import README_END, README_START, update_readme  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    readme = out / "README.md"
    readme.write_text(f"# title\n\n{README_START}\nold figures\n{README_END}\n\nafter\n")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--readme",
         str(readme)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return out, results, result.stdout, readme


def sections(results: dict) -> dict[str, dict]:
    return {section["name"]: section for section in results["sections"]}


def test_every_section_ran_or_says_why(quick_run):
    _, results, stdout, _ = quick_run
    assert results["quick"] is True
    assert {"cpu", "cores", "versions", "date"} <= results["machine"].keys()
    found = sections(results)
    assert list(found) == ["model", "pipeline", "transport", "gpu", "quality"]
    for name in ("model", "pipeline", "transport", "quality"):
        assert found[name]["skipped"] is None, found[name]["skipped"]
        assert found[name]["rows"], name
        assert f"== {found[name]['title']}" in stdout
    gpu = found["gpu"]
    assert gpu["rows"] or "no CUDA" in gpu["skipped"]


def test_quality_rows_hold_the_teacher_and_each_student(quick_run):
    rows = sections(quick_run[1])["quality"]["rows"]
    teacher, student = rows
    assert teacher["model"] == "teacher" and teacher["pan_warp"] > 0 and teacher["ms"] > 0
    assert student["d_input"] > 0 and student["d_model"] > 0
    assert student["gap_closed"] == pytest.approx(1 - student["d_model"] / student["d_input"])
    assert student["gmacs"] > 0 and student["clip_warp"] > 0


def test_model_rows_cover_presets_references_and_precisions(quick_run):
    model = sections(quick_run[1])["model"]
    networks = {(row["network"], row["kind"]) for row in model["rows"]}
    assert {"preset", "reference", "trained"} <= {kind for _, kind in networks}
    for network, _ in networks:
        precisions = {r["precision"]: r for r in model["rows"] if r["network"] == network}
        assert set(precisions) == {"fp32", "fp16", "int8"}
        assert precisions["fp32"]["speedup"] == 1.0
        for row in precisions.values():
            assert row["ms"] > 0 and row["fps"] > 0 and row["gmacs"] > 0 and row["params_m"] > 0
            assert row["size"] == f"{row['width']}x{row['height']}"  # width x height
    assert all(r["psnr_db"] is None for r in model["rows"] if r["kind"] != "trained")
    trained_int8 = next(r for r in model["rows"]
                        if r["kind"] == "trained" and r["precision"] == "int8")
    assert 20 < trained_int8["psnr_db"] < 80  # a real quantized model: close, not identical
    assert {t["name"].split(",")[0] for t in model["targets"]} >= {"INT8 speed-up vs FP32"}


def test_pipeline_compares_the_daemon_with_the_bare_engine(quick_run):
    pipeline = sections(quick_run[1])["pipeline"]
    for row in pipeline["rows"]:
        assert row["frames"] >= 2 and row["daemon_fps"] > 0 and row["bare_fps"] > 0
        assert row["ratio"] == pytest.approx(row["daemon_fps"] / row["bare_fps"], rel=0.01)
        assert row["capture_to_publish_ms_p50"] <= row["capture_to_publish_ms_p99"]
        assert row["added_ms_p50"] < row["capture_to_publish_ms_p50"]
        assert row["camera_fps"] > 0 and row["demand_added_ms_p50"] > 0  # at 30 fps; on demand
    copies = pipeline["rows"][0]["copies_per_frame"]
    assert set(copies) == {"source->engine input", "engine output->result",
                           "result->zmq payload"}
    assert [t["name"] for t in pipeline["targets"]][1] == "daemon fps / bare engine fps"


def test_transport_sets_stylecast_beside_imagezmq(quick_run):
    rows = sections(quick_run[1])["transport"]["rows"]
    assert [row["error"] for row in rows] == [None] * len(rows)
    systems = {(row["system"], row["mode"]) for row in rows}
    assert systems >= {("stylecast", "pub/sub"), ("imagezmq", "pub/sub"), ("imagezmq", "req/rep")}
    assert {row["format"] for row in rows} == {"rgb24", "jpeg"}
    assert {row["transport"] for row in rows} == {"tcp", "ipc"}
    assert {row["subscribers"] for row in rows if row["mode"] == "pub/sub"} >= {1, 8}
    assert any(row["slow"] for row in rows)
    assert all("sent_fps" not in row and row["recv_fps_min"] > 0 for row in rows)  # delivered


def test_outputs_are_written_and_the_readme_block_replaced(quick_run):
    out, results, _, readme = quick_run
    with Image.open(out / "results.png") as image:
        assert image.format == "PNG" and image.width > 500
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # a drawn figure, not a blank canvas
    text = (out / "results.md").read_text()
    assert "### Targets" in text and "stain (trained nano)" in text
    block = readme.read_text()
    assert "old figures" not in block and block.endswith("after\n")
    assert results["machine"]["cpu"] in block


def test_update_readme_needs_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="no <!-- benchmarks:start -->"):
        update_readme(readme, "figures")
    assert readme.read_text() == "no markers here\n"


def test_the_copy_audit_sees_a_copy_when_there_is_one(tmp_path):
    """bgr24 payloads are a channel-swapped copy of the engine's RGB result: the audit that
    reports 0 copies for rgb24 must report 1 per frame here, or its zeros mean nothing."""
    from stylecast.daemon.config import BUNDLED_MODELS

    audit = CopyAudit(BUNDLED_MODELS / "stain.onnx", "test://?width=64&height=48&fps=0", "bgr24")
    copies = audit.run(frames=5)
    assert copies == {"source->engine input": 0.0, "engine output->result": 0.0,
                      "result->zmq payload": 1.0}


def test_the_operator_profile_says_where_the_time_goes(capsys):
    from benchmarks.operator_profile import main
    from stylecast.daemon.config import BUNDLED_MODELS

    assert main([str(BUNDLED_MODELS / "stain.onnx"), "--size", "64x64", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "ms of kernels per frame" in out
    assert "QLinearConv" in out or "ConvInteger" in out  # the INT8 body shows as integer convs
