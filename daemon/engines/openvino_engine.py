"""Run a stylecast ONNX artifact with OpenVINO on the CPU: uint8 RGB frames in, uint8 RGB out.

The same artifact ONNX Runtime runs, fed the same way: its contract (read from the ONNX
metadata) says how, `tensor_io` converts. OpenVINO runs a model with a fixed input shape about
10% faster than one with dynamic height and width, so the model is reshaped to the frame's size
and compiled on the first frame, and again whenever the frame size changes (a fraction of a
second for a nano model; FittedEngine keeps the size the same from frame to frame).

The inference precision is pinned to f32: on a CPU with bfloat16 support (AVX512_BF16, AMX)
OpenVINO would otherwise run an FP32 model in bf16, a precision the artifact was never verified
in. The quantized layers of an INT8 (Q/DQ) model still run in INT8.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from stylecast.core.artifact import Contract, read_onnx_contract
from stylecast.core.errors import ArtifactError, ConfigError, StylecastError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.daemon.engines.protocol import Size
from stylecast.daemon.engines.settings import EngineSettings, threads_text
from stylecast.daemon.engines.tensor_io import from_model_output, to_model_input

log = logging.getLogger(__name__)

DEVICE = "CPU"


def import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ConfigError(needs("engine.runtime = 'openvino'", "openvino")) from None
    return openvino


def openvino_available() -> bool:
    try:
        import_openvino()
    except ConfigError:
        return False
    return True


def error_text(err: Exception) -> str:
    """OpenVINO's message on one line, without its 'Exception from src/...cpp:84:' lines."""
    lines = [line for line in str(err).splitlines()
             if line.strip() and not line.startswith(("Exception from ", "Check '"))]
    return " ".join(" ".join(lines).split()) or type(err).__name__


class OpenVinoEngine:
    """One OpenVINO model over an artifact. Call it with (H, W, 3) uint8 RGB frames.

    threads: INFERENCE_NUM_THREADS; None or 0 = OpenVINO's default (one per core).
    """

    def __init__(self, model: str | Path, *, threads: int | None = None) -> None:
        ov = import_openvino()
        self.name = str(model)
        self.core = ov.Core()
        try:
            self.model: Any = self.core.read_model(self.name)
        except Exception as err:  # RuntimeError, or one of OpenVINO's own failure types
            message = error_text(err)
            raise ArtifactError(f"{self.name}: OpenVINO cannot load it ({message})") from None
        self.contract: Contract = read_onnx_contract(self.name)
        self._check_io_names()
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                       "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.size: Size | None = None  # the frame size the model is compiled for
        self.request: Any = None
        self._output: Any = None
        self.description = (f"openvino {DEVICE}, {threads_text(threads)}, {Path(self.name).name} "
                            f"({self.contract.precision})")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise StylecastError(f"{self.name}: the engine is closed")
        feed = to_model_input(frame, self.contract.input)
        size = (frame.shape[0], frame.shape[1])
        if size != self.size:
            self._compile(size, feed.shape)
        # The frame is read in place (share_inputs); the output is OpenVINO's copy to keep.
        outputs = self.request.infer({self.contract.input.name: feed}, share_inputs=True)
        return from_model_output(outputs[self._output], self.contract.output)

    def close(self) -> None:
        self.model = self.request = self._output = None

    def _compile(self, size: Size, shape: tuple[int, ...]) -> None:
        started = time.perf_counter()
        self.model.reshape({self.contract.input.name: list(shape)})
        compiled = self.core.compile_model(self.model, DEVICE, self.config)
        self.request = compiled.create_infer_request()
        self._output = compiled.output(self.contract.output.name)
        self.size = size
        log.debug("openvino: %s compiled for %s in %.2f s", Path(self.name).name,
                 size_text(*size), time.perf_counter() - started)

    def _check_io_names(self) -> None:
        inputs = [port.get_any_name() for port in self.model.inputs]
        outputs = sorted(name for port in self.model.outputs for name in port.get_names())
        if inputs != [self.contract.input.name] or self.contract.output.name not in outputs:
            raise ArtifactError(
                f"{self.name}: graph inputs {inputs} / outputs {outputs} do not match the "
                f"contract's '{self.contract.input.name}' -> '{self.contract.output.name}'")


def open_openvino(path: str | Path, settings: EngineSettings) -> OpenVinoEngine:
    """An OpenVinoEngine on the CPU with the threads `settings` ask for."""
    return OpenVinoEngine(path, threads=settings.threads)
