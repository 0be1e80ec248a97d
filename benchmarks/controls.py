"""Controls section: what the live style controls cost per frame, and what smoothing does.

Cost (the table): daemon/frame_mix.FrameMixer, the code the inference stage runs on each
stylized frame, on 640x480 frames (the bundled default style's picture of the test card, and
the card), with OpenCV and with numpy alone. Each case runs in place on one buffer many times,
as in the daemon; milliseconds per frame (median and p95) and that as a share of a frame
interval at 30 fps. docs/architecture.md asks for at most 1 ms (3% of a 30 fps frame).

Effect (the notes): the bundled default style on the test card, once held still with
camera-like noise (test://?motion=0&noise=8: what a model turns into shimmer) and once panning
(the card's window moves a known number of pixels each frame). The engine runs once per
sequence; each smoothing value is then replayed through FrameMixer. Figures are mean absolute
differences in 8-bit levels: frame to frame on the still card (shimmer), and on the pan the
warping error, a frame against the previous one moved by the pan's known displacement
(smoothing that lags shows here as ghosting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from benchmarks.common import Section, Target, percentiles
from stylecast.core.sizes import size_text

FRAME_INTERVAL_MS = 1000.0 / 30
TARGET_MS = 1.0
CASES = {"strength 0.6": {"strength": 0.6}, "smoothing 0.5": {"smoothing": 0.5},
         "strength 0.6 + smoothing 0.5": {"strength": 0.6, "smoothing": 0.5},
         "defaults (1, 0): skipped": {}}
SMOOTHING = (0.0, 0.3, 0.6, 0.9)


@dataclass(frozen=True)
class Plan:
    cost_size: tuple[int, int]  # (height, width)
    runs: int
    effect_size: tuple[int, int]
    effect_frames: int
    settle_frames: int  # left out of the effect figures while the running average fills


QUICK = Plan((480, 640), runs=30, effect_size=(48, 64), effect_frames=8, settle_frames=2)
FULL = Plan((480, 640), runs=400, effect_size=(240, 320), effect_frames=60, settle_frames=20)


def run(quick: bool) -> Section:
    plan = QUICK if quick else FULL
    engine = default_style_engine()
    section = Section(
        name="controls",
        title=f"Live controls: strength and smoothing per frame at {size_text(*plan.cost_size)}",
        columns={"backend": "backend", "case": "case", "ms_p50": "ms p50", "ms_p95": "ms p95",
                 "frame_pct": "% of a 30 fps frame"})
    section.rows = cost_rows(engine, plan)
    worst = max(row["ms_p50"] for row in section.rows if row["backend"] == "opencv")
    section.targets.append(Target(
        f"live controls per frame at {size_text(*plan.cost_size)} (OpenCV, both on), ms",
        f"<= {TARGET_MS:g}", round(worst, 3), worst <= TARGET_MS))
    section.notes += effect_notes(engine, plan)
    return section


def default_style_engine():
    """The style a daemon with no config runs (the bundled default), as the daemon loads it."""
    from stylecast.daemon.config import load_config
    from stylecast.daemon.engines import load_engine

    config = load_config(None)
    return load_engine(config.style_models()[config.active_style()], config.engine)


def cost_rows(engine, plan: Plan) -> list[dict]:
    from stylecast.daemon.config import StyleTuning
    from stylecast.daemon.frame_mix import FrameMixer

    frame = sequence(*plan.cost_size, 1, "")[0]
    stylized = engine(frame)
    rows = []
    for backend in ("opencv", "numpy"):
        for case, values in CASES.items():
            mixer = FrameMixer(opencv=backend == "opencv")
            ms = time_mixer(mixer, stylized.copy(), frame, StyleTuning(**values), plan.runs)
            p50, p95 = ms["p50"], ms["p95"]
            rows.append({"backend": backend, "case": case, "ms_p50": round(p50, 5),
                         "ms_p95": round(p95, 5),
                         "frame_pct": round(100 * p50 / FRAME_INTERVAL_MS, 2)})
    return rows


def time_mixer(mixer, buffer: np.ndarray, frame: np.ndarray, tuning, runs: int) -> dict:
    """Milliseconds per call, in place on one buffer (as the daemon runs it on the engine's)."""
    for _ in range(5):
        mixer.apply(buffer, frame, tuning, "style")
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        mixer.apply(buffer, frame, tuning, "style")
        ms.append((time.perf_counter() - start) * 1000)
    return percentiles(ms)


def effect_notes(engine, plan: Plan) -> list[str]:
    from stylecast.daemon.sources.pattern import window_offset

    height, width = plan.effect_size
    still = [engine(f) for f in sequence(height, width, plan.effect_frames, "&motion=0&noise=8")]
    pan = [engine(f) for f in sequence(height, width, plan.effect_frames, "")]
    offsets = [window_offset(i, height, width) for i in range(plan.effect_frames)]
    settled = range(plan.settle_frames + 1, plan.effect_frames)
    shimmer, warp, trail = [], [], []
    for smoothing in SMOOTHING:
        calm, moved = smoothed(still, smoothing), smoothed(pan, smoothing)
        shimmer.append(np.mean([np.abs(calm[i] - calm[i - 1]).mean() for i in settled]))
        warp.append(np.mean([warping_error(moved[i - 1], moved[i], offsets[i - 1], offsets[i])
                             for i in settled]))
        trail.append(np.mean([np.abs(moved[i] - pan[i]).mean() for i in settled]))
    values = ", ".join(f"{s:g}" for s in SMOOTHING)
    return [
        f"smoothing {values} at {size_text(height, width)}, default style, in 8-bit levels: "
        f"still card with noise, frame-to-frame difference {_levels(shimmer)}; panning card, "
        f"warping error {_levels(warp)}, and the trail (published frame against the frame's own "
        f"stylization) {_levels(trail)}",
        "warping error falls on the pan too, but only because the picture smears: the trail "
        "grows with smoothing (the average spans about 1 / (1 - smoothing) frames). Use "
        "smoothing with a still camera on a still or slow scene; keep it low or off where "
        "things move",
    ]


def sequence(height: int, width: int, count: int, query: str) -> list[np.ndarray]:
    from stylecast.daemon.sources import open_source

    source = open_source(f"test://?width={width}&height={height}&fps=0{query}")
    source.open()
    try:
        return [source.read(1.0).image for _ in range(count)]
    finally:
        source.close()


def smoothed(outputs: list[np.ndarray], smoothing: float) -> list[np.ndarray]:
    """The frames the daemon would publish at this smoothing (strength 1)."""
    from stylecast.daemon.config import StyleTuning
    from stylecast.daemon.frame_mix import FrameMixer

    mixer, tuning = FrameMixer(), StyleTuning(smoothing=smoothing)
    return [mixer.apply(out.copy(), out, tuning, "style").astype(np.float32) for out in outputs]


def warping_error(before: np.ndarray, after: np.ndarray, offset_before: tuple[int, int],
                  offset_after: tuple[int, int]) -> float:
    """Mean |after - before moved by the pan|, over the part of the card both frames show."""
    dy, dx = offset_after[0] - offset_before[0], offset_after[1] - offset_before[1]
    height, width = after.shape[:2]
    rows = slice(max(0, -dy), min(height, height - dy))
    cols = slice(max(0, -dx), min(width, width - dx))
    moved = before[rows.start + dy:rows.stop + dy, cols.start + dx:cols.stop + dx]
    return float(np.abs(after[rows, cols] - moved).mean())


def _levels(values: list[float]) -> str:
    return " -> ".join(f"{v:.2f}" for v in values)
