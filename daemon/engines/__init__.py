"""The daemon's inference engines: load a model artifact, stylize frames of any size.

    engine = load_engine("/var/lib/stylecast/mosaic.onnx", settings, frame_size=(480, 640))
    stylized = engine(frame)          # (H, W, 3) uint8 RGB in and out, any H and W
    engine.close()

Which runtime runs the model (EngineSettings.runtime):

- "onnxruntime": ONNX Runtime on the execution providers settings.providers names.
- "openvino": OpenVINO on the CPU, compiled for the frame size on the first frame.
- "tensorrt": native TensorRT. An `.engine`/`.plan` file is deserialized (its contract is in its
  sidecar JSON); an `.onnx` artifact is built into an engine once and cached in
  settings.cache_dir (`notify(seconds)` is called while a build runs).
- "auto": native TensorRT for `.engine`/`.plan` files, and for `.onnx` where tensorrt and a
  cuda-python runtime binding import; otherwise ONNX Runtime, or OpenVINO where it is installed
  and runs frames of frame_size faster on this machine (timed at load, see runtime_choice).

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

DEFAULT_FRAME_SIZE: Size = (480, 640)  # what "auto" times the CPU runtimes at, unless told


def choose_runtime(path: Path, runtime: str, native_tensorrt: Callable[[], bool]) -> str:
    """"onnxruntime", "openvino" or "tensorrt" for the model at `path` under the `runtime`
    setting; `native_tensorrt()` says whether tensorrt and cuda-python are installed (asked for
    "auto" and an ONNX model only). "onnxruntime" for "auto" is the CPU choice, which load_engine
    makes between ONNX Runtime and OpenVINO."""
    kind = model_kind(path)
    if runtime in ("onnxruntime", "openvino"):
        if kind == "engine":
            raise ConfigError(f"{path}: a TensorRT engine does not run with engine.runtime = "
                              f"{runtime!r}; use 'tensorrt' or 'auto', or give the .onnx model")
        return runtime
    if runtime == "tensorrt" or kind == "engine":
        return "tensorrt"
    if runtime != "auto":
        raise ConfigError(f"engine.runtime = {runtime!r}: expected auto, onnxruntime, openvino "
                          "or tensorrt")
    return "tensorrt" if native_tensorrt() else "onnxruntime"


def load_engine(model: str | Path, settings: EngineSettings, *,
                frame_size: Size | None = None,
                notify: Callable[[float], None] | None = None) -> Engine:
    """Open `model` with the runtime `settings` choose; frames of any size are accepted.

    frame_size: the camera's (height, width), which a dynamic model's TensorRT engine is built
    for and "auto" times ONNX Runtime and OpenVINO at (default 640x480).
    notify(seconds_elapsed): called while a TensorRT engine builds (systemd's
    EXTEND_TIMEOUT_USEC). Raises ArtifactError for a missing or unusable model, ConfigError for a
    runtime or provider that is not installed.
    """
    from stylecast.daemon.engines.onnxruntime_engine import open_onnxruntime
    from stylecast.daemon.engines.openvino_engine import open_openvino
    from stylecast.daemon.engines.runtime_choice import open_fastest
    from stylecast.daemon.engines.tensorrt_engine import native_tensorrt_available, open_tensorrt

    path = Path(model)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    runtime = choose_runtime(path, settings.runtime, native_tensorrt_available)
    size_range = None
    if runtime == "tensorrt":
        native = open_tensorrt(path, settings, frame_size=frame_size, notify=notify)
        engine: Engine = native
        size_range = native.size_range
    elif runtime == "openvino":
        engine = open_openvino(path, settings)
    elif settings.runtime == "auto":
        engine = open_fastest(path, settings, frame_size or DEFAULT_FRAME_SIZE)
    else:
        engine = open_onnxruntime(path, settings)
    log.info("engine: %s", engine.description)
    return FittedEngine(engine, size_range=size_range)
