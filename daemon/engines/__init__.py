"""The daemon's inference engines: load a model artifact, stylize frames of any size.

    engine = load_engine("/var/lib/stylecast/mosaic.onnx", settings, frame_size=(480, 640))
    stylized = engine(frame)          # (H, W, 3) uint8 RGB in and out, any H and W
    engine.close()

Which runtime runs the model (EngineSettings.runtime):

- "onnxruntime": ONNX Runtime on the execution providers settings.providers names.
- "tensorrt": native TensorRT. An `.engine`/`.plan` file is deserialized (its contract is in its
  sidecar JSON); an `.onnx` artifact is built into an engine once and cached in
  settings.cache_dir (`notify(seconds)` is called while a build runs).
- "auto": native TensorRT for `.engine`/`.plan` files, and for `.onnx` where tensorrt and a
  cuda-python runtime binding import; ONNX Runtime otherwise.

Every engine comes wrapped in a FittedEngine, which resizes frames the model cannot take as they
are and the output back (see frame_fit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from stylecast.core.artifact import model_kind
from stylecast.core.errors import ArtifactError, ConfigError
from stylecast.daemon.engines.frame_fit import FittedEngine
from stylecast.daemon.engines.protocol import Engine, Size
from stylecast.daemon.engines.settings import EngineSettings

__all__ = ["Engine", "EngineSettings", "FittedEngine", "choose_runtime", "load_engine"]

log = logging.getLogger(__name__)


def choose_runtime(path: Path, runtime: str, native_tensorrt: Callable[[], bool]) -> str:
    """"onnxruntime" or "tensorrt" for the model at `path` under the `runtime` setting;
    `native_tensorrt()` says whether tensorrt and cuda-python are installed (asked for "auto"
    and an ONNX model only)."""
    kind = model_kind(path)
    if runtime == "onnxruntime":
        if kind == "engine":
            raise ConfigError(f"{path}: a TensorRT engine does not run with engine.runtime = "
                              "'onnxruntime'; use 'tensorrt' or 'auto', or give the .onnx model")
        return "onnxruntime"
    if runtime == "tensorrt" or kind == "engine":
        return "tensorrt"
    if runtime != "auto":
        raise ConfigError(f"engine.runtime = {runtime!r}: expected auto, onnxruntime or tensorrt")
    return "tensorrt" if native_tensorrt() else "onnxruntime"


def load_engine(model: str | Path, settings: EngineSettings, *,
                frame_size: Size | None = None,
                notify: Callable[[float], None] | None = None) -> Engine:
    """Open `model` with the runtime `settings` choose; frames of any size are accepted.

    frame_size: the camera's (height, width), which a dynamic model's TensorRT engine is built
    for. notify(seconds_elapsed): called while a TensorRT engine builds (systemd's
    EXTEND_TIMEOUT_USEC). Raises ArtifactError for a missing or unusable model, ConfigError for a
    runtime or provider that is not installed.
    """
    from stylecast.daemon.engines.onnxruntime_engine import open_onnxruntime
    from stylecast.daemon.engines.tensorrt_engine import native_tensorrt_available, open_tensorrt

    path = Path(model)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    runtime = choose_runtime(path, settings.runtime, native_tensorrt_available)
    if runtime == "onnxruntime":
        engine: Engine = open_onnxruntime(path, settings)
        size_range = None
    else:
        native = open_tensorrt(path, settings, frame_size=frame_size, notify=notify)
        engine, size_range = native, native.size_range
    log.info("engine: %s", engine.description)
    return FittedEngine(engine, size_range=size_range)
