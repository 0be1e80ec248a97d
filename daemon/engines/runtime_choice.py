"""engine.runtime = "auto" on a CPU: time ONNX Runtime and OpenVINO here, keep the faster.

Which of the two runs a model faster depends on the CPU (AVX2, AVX-512, VNNI), the model and
its precision, so it is measured rather than guessed: both engines are opened, run on one
synthetic frame of the size the model will run at, timed briefly (1-2 s for a nano
model at 640x480), and the slower one is closed. One INFO line gives the choice and both
figures.

ONNX Runtime alone is used where OpenVINO is not installed, and where ONNX Runtime has a GPU
execution provider (CUDA or TensorRT) to run on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from stylecast.core.sizes import size_text
from stylecast.daemon.engines.frame_fit import model_size
from stylecast.daemon.engines.onnxruntime_engine import PROVIDERS, open_onnxruntime
from stylecast.daemon.engines.openvino_engine import open_openvino, openvino_available
from stylecast.daemon.engines.protocol import Engine, Size
from stylecast.daemon.engines.settings import EngineSettings

log = logging.getLogger(__name__)

WARMUP = 1  # calls per engine before timing (OpenVINO's model is compiled before these)
BLOCKS = 2  # timed blocks per engine, the engines taking turns block by block
RUNS = 4  # calls per block, at most
BUDGET_S = 1.5  # timed calls of all engines together, about, for a model slower than that allows

Figures = dict[str, float]  # runtime -> ms per frame
Measure = Callable[[Mapping[str, Engine], np.ndarray], Figures]


def time_engines(engines: Mapping[str, Callable[[np.ndarray], np.ndarray]], frame: np.ndarray, *,
            warmup: int = WARMUP, blocks: int = BLOCKS, runs: int = RUNS,
            clock: Callable[[], float] = time.perf_counter) -> Figures:
    """ms per frame of each engine on `frame`: its fastest block. The engines take turns block by
    block, so a burst of other work on the machine slows both rather than one."""
    last_warmup: dict[str, float] = {}
    for name, engine in engines.items():
        for _ in range(warmup):
            started = clock()
            engine(frame)
            last_warmup[name] = (clock() - started) * 1000
    # a slow model gets fewer timed runs, or none: the daemon's start waits for this
    slowest_s = max(last_warmup.values(), default=0.0) / 1000
    if slowest_s * len(engines) > BUDGET_S:
        return last_warmup
    runs = max(1, min(runs, int(BUDGET_S / (blocks * len(engines) * max(slowest_s, 1e-6)))))
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(blocks):
        for name, engine in engines.items():
            started = clock()
            for _ in range(runs):
                engine(frame)
            best[name] = min(best[name], (clock() - started) * 1000 / runs)
    return best


def fastest(figures: Mapping[str, float]) -> str:
    """The runtime with the fewest ms per frame (the first listed on a tie)."""
    return min(figures, key=lambda name: figures[name])


def synthetic_frame(size: Size) -> np.ndarray:
    """A noisy (H, W, 3) uint8 frame: timing does not depend on the picture."""
    return np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)


def open_fastest(path: Path, settings: EngineSettings, frame_size: Size, *,
                 measure: Measure = time_engines) -> Engine:
    """ONNX Runtime or OpenVINO for the ONNX model at `path`, whichever runs frames of
    `frame_size` faster here."""
    onnxruntime = open_onnxruntime(path, settings)
    if onnxruntime.session.get_providers() != [PROVIDERS["cpu"]] or not openvino_available():
        return onnxruntime
    frame = synthetic_frame(model_size(onnxruntime.contract, frame_size))
    try:
        openvino = open_openvino(path, settings)
        openvino(frame)  # compiles it for the frame size
    except Exception as err:  # ArtifactError, or OpenVINO's own failure types when compiling
        log.warning("engine.runtime auto: onnxruntime, as OpenVINO cannot run %s (%s)",
                    path.name, err)
        return onnxruntime
    engines: dict[str, Engine] = {"onnxruntime": onnxruntime, "openvino": openvino}
    figures = measure(engines, frame)
    choice = fastest(figures)
    for name, engine in engines.items():
        if name != choice:
            engine.close()
    log.info("engine.runtime auto: %s, the faster here for %s at %s (%s)", choice, path.name,
             size_text(*frame.shape[:2]),
             ", ".join(f"{name} {ms:.1f} ms" for name, ms in figures.items()))
    return engines[choice]
