"""`python -m benchmarks --quick` keeps working: run once for real, structure checked, never speed.

The quick mode times tiny frames for a fraction of a second per case, so its figures mean
nothing; what is checked is that every section ran (or says why not), every row has its
figures, and the JSON, PNG and markdown outputs are written and agree.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.frame_copies import CopyAudit
from benchmarks.models import TRAINED
from benchmarks.report import README_END, README_START, update_readme
from stylecast.daemon.config import BUNDLED_MODELS, DEFAULT_BUNDLED_STYLE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    readme = out / "README.md"
    readme.write_text(f"# title\n\n{README_START}\nold figures\n{README_END}\n\nafter\n")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--readme",
             str(readme)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as err:  # say which section it was in, and where
        pytest.fail(f"python -m benchmarks --quick ran past {err.timeout} s\n"
                    f"{text(err.stdout)[-3000:]}\n{text(err.stderr)[-6000:]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return out, results, result.stdout, readme


def text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def test_a_stuck_quick_section_is_ended_with_its_stacks_shown(capfd):
    from benchmarks.__main__ import SectionTimeout, time_limit

    with pytest.raises(SectionTimeout, match="still running after 2 s"), time_limit(2):
        time.sleep(30)
    assert "test_a_stuck_quick_section_is_ended" in capfd.readouterr().err  # the stack dump
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def sections(results: dict) -> dict[str, dict]:
    return {section["name"]: section for section in results["sections"]}


def test_every_section_ran_or_says_why(quick_run):
    _, results, stdout, _ = quick_run
    assert results["quick"] is True
    assert {"cpu", "cores", "versions", "date"} <= results["machine"].keys()
    found = sections(results)
    assert list(found) == ["model", "runtimes", "pipeline", "controls", "transport",
                           "consumers", "gpu", "quality"]
    for name in ("model", "runtimes", "pipeline", "controls", "transport", "consumers",
                 "quality"):
        assert found[name]["skipped"] is None, found[name]["skipped"]
        assert found[name]["rows"], name
        assert f"== {found[name]['title']}" in stdout
    gpu = found["gpu"]
    assert gpu["rows"] or "no CUDA" in gpu["skipped"]


def test_quality_rows_hold_the_teacher_and_each_student(quick_run):
    rows = sections(quick_run[1])["quality"]["rows"]
    teacher, *repeats, student = rows
    assert teacher["model"] == "teacher" and teacher["pan_warp"] > 0 and teacher["ms"] > 0
    assert [row["role"] for row in repeats] == ["repeatability"] * 3
    for row in repeats:  # the teacher on a moved or noisy photo: close, not identical
        assert 0 < row["d_model"] < row["d_input"] and row["gap_closed"] < 1
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


@pytest.fixture(scope="module")
def runtimes_run(tmp_path_factory):
    """The runtimes section alone (--sections runtimes): its own tests need not run the rest."""
    out = tmp_path_factory.mktemp("runtimes")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--sections", "runtimes", "--out",
         str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)  # ~15 s idle
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    return sections(results)["runtimes"], result.stdout


def test_runtimes_rows_set_each_runtime_against_ort_fp32_and_the_floor(runtimes_run):
    section, stdout = runtimes_run
    assert section["skipped"] is None and f"== {section['title']}" in stdout
    rows = section["rows"]
    found = {(r["preset"], r["runtime"], r["precision"]): r for r in rows}
    runtimes = {"ORT", "OpenVINO"} if importlib.util.find_spec("openvino") else {"ORT"}
    assert set(found) == {(p, r, q) for p in ("nano", "swift") for r in runtimes
                          for q in ("fp32", "int8")}
    if "OpenVINO" not in runtimes:
        assert any("OpenVINO rows skipped" in note for note in section["notes"])
    assert found["nano", "ORT", "fp32"]["x_nano"] == 1.0
    for row in rows:
        own = found[row["preset"], "ORT", "fp32"]
        assert row["ms"] > 0 and row["fps"] > 0 and row["floor_ms"] > 0
        assert row["x_fp32"] == pytest.approx(own["ms"] / row["ms"], rel=0.05, abs=0.01)
        assert row["gmacs"] == own["gmacs"] > 0  # the same network, counted on each file
        assert row["floor_ms"] == pytest.approx(
            max(row["compute_floor_ms"], row["memory_floor_ms"]), abs=0.001)
        assert row["x_floor"] == pytest.approx(row["ms"] / row["floor_ms"], rel=0.05, abs=0.1)
        assert row["bound"] in {"memory", "compute"}
        if row["precision"] == "int8":  # uint8 stretches move fewer bytes than FP32
            assert 0 < row["int8_gmacs"] <= row["gmacs"] and row["mb_moved"] < own["mb_moved"]
        else:
            assert row["int8_gmacs"] == 0 and row["psnr_db"] is None
        if row["weights"] == "random":
            assert row["psnr_db"] is None
        elif row["precision"] == "int8":
            assert 20 < row["psnr_db"] < 80  # a real quantized model: close, not identical
    assert found["swift", "ORT", "fp32"]["weights"] != "random"  # the bundled styles are swift
    names = [t["name"] for t in section["targets"]]
    assert names[:2] == ["swift INT8 (ORT) vs swift FP32 (ORT), 64x64",
                         "swift INT8 (ORT) vs nano FP32 (ORT), 64x64"]
    assert any(name.startswith("INT8 PSNR to FP32, swift") for name in names)
    notes = " ".join(section["notes"])
    assert "GMAC/s" in notes and "GB/s" in notes and "threads" in notes


def test_the_runtimes_graph_cost_counts_what_pytorch_counts():
    from benchmarks.runtimes import graph_cost
    from stylecast.core.artifact import read_onnx_contract
    from stylecast.training.complexity import count_macs
    from stylecast.training.presets import build_generator

    fp32 = graph_cost(BUNDLED_MODELS / "fp32" / f"{DEFAULT_BUNDLED_STYLE}.onnx", (64, 96))
    int8 = graph_cost(BUNDLED_MODELS / f"{DEFAULT_BUNDLED_STYLE}.onnx", (64, 96))
    preset = read_onnx_contract(BUNDLED_MODELS / f"{DEFAULT_BUNDLED_STYLE}.onnx").preset
    assert fp32.fp32_macs == count_macs(build_generator(preset), 64, 96) and fp32.int8_macs == 0
    assert int8.fp32_macs + int8.int8_macs == fp32.fp32_macs and int8.int8_macs > 0
    assert 0 < int8.bytes_moved < fp32.bytes_moved
    # at least the uint8 frame in and out, and swift's stem: 32 FP32 channels at half size,
    # written and read
    assert fp32.bytes_moved > 64 * 96 * (3 + 3) + 32 * 48 * 2 * 32 * 4


def test_the_runtimes_peaks_are_measured():
    from benchmarks.runtimes import memory_bandwidth_gbs, peak_gmacs

    assert peak_gmacs(1, integer=False, n=64, runs=2) > 0
    assert peak_gmacs(1, integer=True, n=64, runs=2) > 0
    assert memory_bandwidth_gbs(2, mib=4, runs=2) > 0

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


def test_controls_cost_each_case_on_each_backend_at_640x480(quick_run):
    controls = sections(quick_run[1])["controls"]
    assert "640x480" in controls["title"]
    cases = {(row["backend"], row["case"]) for row in controls["rows"]}
    assert {backend for backend, _ in cases} == {"opencv", "numpy"} and len(cases) == 8
    for row in controls["rows"]:
        assert 0 < row["ms_p50"] <= row["ms_p95"]
        assert row["frame_pct"] == pytest.approx(100 * row["ms_p50"] / (1000 / 30), abs=0.01)
    assert controls["targets"][0]["wanted"] == "<= 1"
    assert "frame-to-frame difference" in controls["notes"][0]
    assert "warping error" in controls["notes"][0]


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


def test_consumers_set_mjpeg_beside_webrtc_per_viewer(quick_run):
    consumers = sections(quick_run[1])["consumers"]
    rows = consumers["rows"]
    assert [row["error"] for row in rows] == [None] * len(rows)
    for output, viewer in (("mjpeg", "http client"), ("webrtc", "aiortc")):
        own = [r for r in rows if r["output"] == output and not r["age"]]
        assert [r["viewers"] for r in own] == [0, 1, 2] and {r["viewer"] for r in own} == {viewer}
        idle = own[0]
        assert idle["sub_cpu_pct"] >= 0 and idle["fps_mean"] is None
        for row in own[1:]:  # real receivers: every one got frames and bytes
            assert row["fps_min"] > 0 and row["mbit_s"] > 0 and row["host_cpu_pct"] > 0
            assert row["mbit_s_total"] == pytest.approx(row["mbit_s"] * row["viewers"], abs=0.02)
            assert row["cpu_pct_per_viewer"] == pytest.approx(
                (row["sub_cpu_pct"] - idle["sub_cpu_pct"]) / row["viewers"], abs=0.06)
    assert {r["codec"] for r in rows if r["output"] == "webrtc" and r["viewers"]} <= {
        "video/H264", "video/VP8"}
    assert all(r["size"] == [640, 480] for r in rows if r["viewer"] == "aiortc" and r["viewers"])
    age = next(r for r in rows if r["age"])  # quick: the MJPEG client's only, no Chromium
    assert (age["output"], age["viewers"]) == ("mjpeg", 1) and age["ages"] > 0
    assert 0 < age["age_ms_p50"] <= age["age_ms_p95"]
    notes = " ".join(consumers["notes"])
    assert "Quick mode has no Chromium row" in notes and "least-squares slope" in notes


def test_outputs_are_written_and_the_readme_block_replaced(quick_run):
    out, results, _, readme = quick_run
    with Image.open(out / "results.png") as image:
        assert image.format == "PNG" and image.width > 500
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # a drawn figure, not a blank canvas
    text = (out / "results.md").read_text()
    assert "### Targets" in text and TRAINED in text
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

    audit = CopyAudit(BUNDLED_MODELS / f"{DEFAULT_BUNDLED_STYLE}.onnx",
                      "test://?width=64&height=48&fps=0", "bgr24")
    copies = audit.run(frames=5)
    assert copies == {"source->engine input": 0.0, "engine output->result": 0.0,
                      "result->zmq payload": 1.0}


def test_the_operator_profile_says_where_the_time_goes(capsys):
    from benchmarks.operator_profile import main

    model = BUNDLED_MODELS / f"{DEFAULT_BUNDLED_STYLE}.onnx"
    assert main([str(model), "--size", "64x64", "--runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "ms of kernels per frame" in out
    assert "QLinearConv" in out or "ConvInteger" in out  # the INT8 body shows as integer convs


def test_teacher_sensitivity_scores_near_copies_of_the_teacher(capsys, tmp_path):
    """The quick stand-in (multistyle:19 on three small photos): every near-copy of the teacher
    closes part of the gap, and a stronger blur closes less of it than a lighter one."""
    from benchmarks.teacher_sensitivity import main

    out = tmp_path / "sensitivity.json"
    assert main(["--quick", "--out", str(out)]) == 0
    gaps = json.loads(out.read_text())["multistyle:19"]
    assert "| teacher, photo moved 1 px |" in capsys.readouterr().out
    assert {"teacher, photo moved 1 px", "teacher, photo + noise (sigma 2)",
            "average of the teacher over 11 moves of 0-3 px", "swift fp32 (compared)"} <= set(gaps)
    assert all(-1 < value < 1 for value in gaps.values())
    assert gaps["teacher's output blurred 0.5 px"] > gaps["teacher's output blurred 1 px"]
    with pytest.raises(SystemExit) as ended:
        main(["--quick", "no-such-style"])
    assert ended.value.code == 78
    with pytest.raises(SystemExit) as ended:  # refused before any measuring
        main(["--quick", "--out", str(tmp_path / "missing" / "out.json")])
    assert ended.value.code == 78
    assert "--out" in capsys.readouterr().err and not (tmp_path / "missing").exists()
