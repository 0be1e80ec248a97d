"""Run a stylecast ONNX artifact with ONNX Runtime: uint8 RGB frames in, uint8 RGB frames out.

The artifact's contract says how to feed it. A model exported with its pixel conversions inside
(uint8 HWC in and out) is fed the frame as it is; a `--float-io` model gets the conversion done
here in numpy, as its contract's layout, dtype, color order and value range say.

The daemon opens it through `open_onnxruntime`, which picks the execution providers named in the
`[engine]` settings (`tensorrt`, `cuda`, `cpu`; none = the best this onnxruntime build has) and
points the TensorRT execution provider's engine and timing caches into the engine cache folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stylecast.core.artifact import Contract, read_onnx_contract
from stylecast.core.errors import ArtifactError, ConfigError, StylecastError
from stylecast.daemon.engines.precision import check_precision, choose_precision
from stylecast.daemon.engines.settings import EngineSettings, threads_text
from stylecast.daemon.engines.tensor_io import from_model_output, to_model_input

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# The order "best available" tries; ONNX Runtime runs each node on the first provider taking it.
PREFERENCE = ("tensorrt", "cuda", "cpu")
# Where the TensorRT execution provider keeps its engines, inside EngineSettings.cache_dir (its
# own file names, apart from the native engine cache's).
ORT_TENSORRT_CACHE = "onnxruntime-tensorrt"

Provider = str | tuple[str, dict[str, Any]]


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("running ONNX models needs onnxruntime "
                          "(pip install 'stylecast[onnx]')") from None
    return onnxruntime


class OnnxEngine:
    """One ONNX Runtime session over an artifact. Call it with (H, W, 3) uint8 RGB frames.

    providers: ONNX Runtime provider names, or (name, options) pairs; default CPU only.
    threads: intra-op threads; None or 0 = ONNX Runtime's default.
    """

    def __init__(self, model: str | Path | bytes, *, threads: int | None = None,
                 providers: Sequence[Provider] | None = None, name: str | None = None) -> None:
        ort = import_onnxruntime()
        self.name = name or (str(model) if not isinstance(model, bytes) else "model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        try:
            self.session: Any = ort.InferenceSession(
                source, options, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as err:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            message = " ".join(str(err).split())
            raise ArtifactError(f"{self.name}: ONNX Runtime cannot load it ({message})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.contract: Contract = Contract.from_metadata(metadata, source=self.name)
        self._check_io_names()
        self.description = self._describe()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.session is None:
            raise StylecastError(f"{self.name}: the engine is closed")
        feed = to_model_input(frame, self.contract.input)
        (output,) = self.session.run([self.contract.output.name],
                                     {self.contract.input.name: feed})
        return from_model_output(output, self.contract.output)

    def close(self) -> None:
        self.session = None  # ONNX Runtime frees the session with its last reference

    def _check_io_names(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [self.contract.input.name] or self.contract.output.name not in outputs:
            raise ArtifactError(
                f"{self.name}: graph inputs {inputs} / outputs {outputs} do not match the "
                f"contract's '{self.contract.input.name}' -> '{self.contract.output.name}'")

    def _describe(self) -> str:
        threads = self.session.get_session_options().intra_op_num_threads
        providers = "+".join(self.session.get_providers())
        return (f"onnxruntime {providers}, {threads_text(threads)}, {Path(self.name).name} "
                f"({self.contract.precision})")


def open_onnxruntime(path: str | Path, settings: EngineSettings) -> OnnxEngine:
    """An OnnxEngine on the execution providers and threads `settings` ask for."""
    ort = import_onnxruntime()
    names = provider_names(settings.providers, ort.get_available_providers())
    providers: list[Provider] = []
    for name in names:
        if name == PROVIDERS["tensorrt"]:
            contract = read_onnx_contract(path)
            providers.append((name, tensorrt_provider_options(contract, settings, str(path))))
        else:
            providers.append(name)
    return OnnxEngine(path, threads=settings.threads, providers=providers)


def provider_names(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """ONNX Runtime provider names for `requested` (tensorrt|cuda|cpu), in order.

    Nothing requested: every one of PREFERENCE this build has (CPU is always built in). A
    requested provider this build lacks is a ConfigError naming it and what is available.
    """
    if not requested:
        return [PROVIDERS[key] for key in PREFERENCE if PROVIDERS[key] in available] or [
            PROVIDERS["cpu"]]
    missing = [PROVIDERS[key] for key in requested if PROVIDERS[key] not in available]
    if missing:
        raise ConfigError(
            f"engine.providers: {', '.join(missing)} is not available in this onnxruntime "
            f"(available: {', '.join(available) or 'none'}); install an onnxruntime build that "
            "has it (onnxruntime-gpu, or the Jetson Zoo wheel on a Jetson) or drop it from "
            "engine.providers")
    return list(dict.fromkeys(PROVIDERS[key] for key in requested))


def tensorrt_provider_options(contract: Contract, settings: EngineSettings,
                              source: str) -> dict[str, Any]:
    """Options of the TensorRT execution provider: cached engines and timing cache in
    settings.cache_dir, FP16 (and INT8 for a Q/DQ model) as the engine precision asks."""
    precision = choose_precision(settings.precision, contract.precision)
    check_precision(contract, precision, source)
    cache = Path(settings.cache_dir) / ORT_TENSORRT_CACHE
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"engine.cache_dir: cannot create {cache} ({err.strerror})") from None
    return {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": precision in ("fp16", "int8"),
        "trt_int8_enable": precision == "int8",
        "trt_max_workspace_size": settings.workspace_mib << 20,
    }
