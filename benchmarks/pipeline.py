"""Pipeline section: stylecastd end to end against the bare engine, on the same model and input.

The daemon runs as a real `stylecastd` process on the built-in test card at 640x480 with
`fps=0` (as fast as the pipeline can go), publishing on ipc; this process subscribes and reads
every frame's header. The bare engine is the same artifact loaded by the same loader with the
same settings, fed pre-drawn test-card frames in a loop, timed before and after the daemon run
(the mean is the reference, so drift on a shared machine falls on both sides).

The frame copies on the hot path are counted in process: a real Pipeline with its real source,
engine and publisher, each watched at its boundary (does the next stage's buffer share memory
with the previous stage's?).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

from benchmarks.common import Section, Target, percentiles

SOURCE = "test://?width=640&height=480&fps=0"
FIRST_FRAME_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Durations:
    warmup_s: float
    measure_s: float
    bare_s: float


QUICK = Durations(warmup_s=0.5, measure_s=2.0, bare_s=1.0)
FULL = Durations(warmup_s=3.0, measure_s=20.0, bare_s=8.0)


def bundled_models() -> dict[str, Path]:
    from stylecast.daemon.config import BUNDLED_MODELS

    return {"stain int8": BUNDLED_MODELS / "stain.onnx",
            "stain fp32": BUNDLED_MODELS / "fp32" / "stain.onnx"}


def run(quick: bool) -> Section:
    durations = QUICK if quick else FULL
    section = Section(
        name="pipeline", title="Pipeline: stylecastd vs the bare engine, nano, 640x480 test card",
        columns={"model": "model", "bare_fps": "bare fps", "daemon_fps": "daemon fps",
                 "ratio": "daemon/bare", "capture_to_publish_ms_p50": "cap->pub p50",
                 "capture_to_publish_ms_p95": "p95", "capture_to_publish_ms_p99": "p99",
                 "added_ms_p50": "added p50", "added_ms_p95": "added p95",
                 "age_ms_p50": "age@sub p50", "age_ms_p95": "age p95",
                 "daemon_cpu_pct": "daemon CPU%"})
    for label, model in bundled_models().items():
        section.rows.append(_measure(label, model, durations))
    copies = count_frame_copies(bundled_models()["stain int8"], frames=10 if quick else 60)
    section.notes += [
        f"daemon: stylecastd --source '{SOURCE}' --model <bundled file>, publishing rgb24 on "
        f"ipc; {durations.measure_s:g} s measured after {durations.warmup_s:g} s warm-up.",
        "daemon fps: published seq numbers over publish timestamps; cap->pub: capture to "
        "publish in the daemon (header timing_ms.total); added: that minus inference; "
        "age@sub: capture to received by this subscriber (one host, CLOCK_MONOTONIC).",
        "bare: the same file, loader and settings (load_engine, EngineSettings()), pre-drawn "
        f"test-card frames, {durations.bare_s:g} s before and after the daemon run, averaged.",
        "full-frame copies per published frame on the hot path, by boundary: "
        + ", ".join(f"{k} {v:g}" for k, v in copies.items()),
    ]
    section.rows[0]["copies_per_frame"] = copies
    section.targets += _targets(section.rows[0])
    return section


def _targets(int8: dict) -> list[Target]:
    return [
        Target("nano INT8 fps through the daemon, 640x480", ">= 30", int8["daemon_fps"],
               int8["daemon_fps"] >= 30),
        Target("daemon fps / bare engine fps", ">= 0.95", int8["ratio"], int8["ratio"] >= 0.95),
        Target("added latency p50 (capture to publish minus inference)", "<= 5 ms",
               int8["added_ms_p50"], int8["added_ms_p50"] <= 5),
    ]


def _measure(label: str, model: Path, durations: Durations) -> dict:
    before = bare_engine_fps(model, durations.bare_s)
    daemon = daemon_figures(model, durations)
    after = bare_engine_fps(model, durations.bare_s)
    bare = (before + after) / 2
    return {"model": label, "bare_fps": round(bare, 1), "bare_fps_before": round(before, 1),
            "bare_fps_after": round(after, 1), **daemon,
            "ratio": round(daemon["daemon_fps"] / bare, 3)}


# --- the bare engine --------------------------------------------------------------------------


def test_card_frames(count: int = 30) -> list[np.ndarray]:
    from stylecast.daemon.sources import open_source

    source = open_source(SOURCE)
    source.open()
    try:
        return [source.read(1.0).image for _ in range(count)]
    finally:
        source.close()


def bare_engine_fps(model: Path, seconds: float) -> float:
    from stylecast.daemon.engines import load_engine
    from stylecast.daemon.engines.settings import EngineSettings

    engine = load_engine(model, EngineSettings())
    frames = test_card_frames()
    for frame in frames[:3]:
        engine(frame)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        engine(frames[count % len(frames)])
        count += 1
    fps = count / (time.perf_counter() - start)
    engine.close()
    return fps


# --- the daemon -------------------------------------------------------------------------------


def stylecastd() -> str:
    beside = Path(sys.executable).with_name("stylecastd")
    return str(beside) if beside.exists() else (shutil.which("stylecastd") or "stylecastd")


def daemon_figures(model: Path, durations: Durations) -> dict:
    import psutil

    folder = Path(tempfile.mkdtemp(prefix="scb-", dir="/tmp"))
    publish, control = f"ipc://{folder}/frames", f"ipc://{folder}/control"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    command = [stylecastd(), "--model", str(model), "--source", SOURCE, "--publish", publish,
               "--control", control, "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.RCVHWM, 10_000)
        sub.setsockopt(zmq.SUBSCRIBE, b"stylized")
        sub.connect(publish)
        _wait_first_frame(sub, process)
        _drain_for(sub, durations.warmup_s)
        usage = psutil.Process(process.pid)
        usage.cpu_percent()
        received = _drain_for(sub, durations.measure_s)
        cpu = usage.cpu_percent()
        rss_mb = usage.memory_info().rss / 1e6
    finally:
        sub.close(linger=0)
        context.term()
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)
    return {**_summarise(received), "daemon_cpu_pct": round(cpu), "daemon_rss_mb": round(rss_mb)}


def _wait_first_frame(sub: zmq.Socket, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
    while not sub.poll(200):
        if process.poll() is not None:
            raise RuntimeError(f"stylecastd exited ({process.returncode}): "
                               f"{process.stderr.read().strip()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no frame from stylecastd in {FIRST_FRAME_TIMEOUT_S:g} s")
    sub.recv_multipart()


def _drain_for(sub: zmq.Socket, seconds: float) -> list[tuple[dict, int]]:
    """(header, received monotonic ns) of every frame that arrives in the next `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1):
            _, header, _ = sub.recv_multipart(copy=False)
            got.append((json.loads(header.bytes), time.monotonic_ns()))
    return got


def _summarise(received: list[tuple[dict, int]]) -> dict:
    if len(received) < 2:
        raise RuntimeError(f"only {len(received)} frames received from stylecastd")
    headers = [h for h, _ in received]
    first, last = headers[0], headers[-1]
    fps = (last["seq"] - first["seq"]) / ((last["t_publish_ns"] - first["t_publish_ns"]) / 1e9)
    total = [h["timing_ms"]["total"] for h in headers]
    added = [h["timing_ms"]["total"] - h["timing_ms"]["infer"] for h in headers]
    ages = [(t - h["t_capture_ns"]) / 1e6 for h, t in received]
    gaps = sum(b["seq"] - a["seq"] - 1 for a, b in itertools.pairwise(headers))
    figures = {"daemon_fps": round(fps, 1), "frames": len(headers), "subscriber_gaps": gaps,
               "infer_ms_p50": round(percentiles([h["timing_ms"]["infer"] for h in headers])
                                     ["p50"], 2)}
    for name, values in (("capture_to_publish_ms", total), ("added_ms", added),
                         ("age_ms", ages)):
        figures |= {f"{name}_{k}": round(v, 2) for k, v in percentiles(values).items()}
    return figures


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(Exception):
        process.stderr.close()


# --- frame copies -----------------------------------------------------------------------------


def count_frame_copies(model: Path, frames: int) -> dict[str, float]:
    """Full-frame copies per published rgb24 frame at each hot-path boundary, measured."""
    from benchmarks.frame_copies import CopyAudit

    return CopyAudit(model, SOURCE).run(frames)
