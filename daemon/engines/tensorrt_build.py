"""The one module that talks to TensorRT: ONNX bytes -> serialized engine, on the device.

One code path for TensorRT 8.5 (JetPack 5.1) through 10.x (JetPack 6: 10.3), using only the
name-based API that all of them have: `Builder.create_network`, `OnnxParser.parse`,
`IBuilderConfig.set_memory_pool_limit(WORKSPACE)`, FP16/INT8 builder flags, an optimization
profile for dynamic H/W, a persistent timing cache, and `build_serialized_network`. Optional
features are detected by name, not by version number:

- networks are created with EXPLICIT_BATCH before TensorRT 10 (where it is the only mode and the
  flag is deprecated);
- an INT8 model (explicit Q/DQ quantization) is built STRONGLY_TYPED where TensorRT has it
  (>= 9.1), as NVIDIA recommends for Q/DQ models: the Q/DQ pairs run in INT8 and every other
  layer in the ONNX's own type (FP32 for our quantized exports); with 8.x it is built weakly
  typed with the INT8 and FP16 flags, so TensorRT may also run the other layers in FP16;
- build phases are reported through `IProgressMonitor` where it exists (>= 9.1).

tensorrt is imported lazily, so the rest of stylecast (and the tests) load without it. This code
runs only where TensorRT and a GPU exist; everything around it (keys, cache, sidecars) lives in
`engine_cache` and is tested anywhere.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque
from pathlib import Path
from typing import Any

from stylecast.core.atomic import atomic_write_bytes
from stylecast.core.errors import ArtifactError, ConfigError
from stylecast.daemon.engines.build_spec import BuildSpec, EngineBuildError, Progress
from stylecast.daemon.engines.nvidia_libs import import_tensorrt, optional_cudart

log = logging.getLogger(__name__)

_logger: Any = None


def tensorrt_version() -> str:
    return str(import_tensorrt().__version__)


def trt_logger() -> Any:
    """The process's one TensorRT logger (TensorRT keeps the first logger it is given): forwards
    to Python logging and remembers the latest errors for the build's error message."""
    global _logger
    if _logger is None:
        trt = import_tensorrt()

        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: deque[str] = deque(maxlen=3)

            def log(self, severity: Any, msg: str) -> None:
                level = int(severity)  # INTERNAL_ERROR 0, ERROR 1, WARNING 2, INFO 3, VERBOSE 4
                if level <= 1:
                    self.errors.append(" ".join(msg.split()))
                    log.error("TensorRT: %s", msg)
                elif level == 2:
                    log.warning("TensorRT: %s", msg)
                elif log.isEnabledFor(logging.DEBUG):
                    log.debug("TensorRT: %s", msg)

        _logger = Logger()
    return _logger


# --- Which GPU ----------------------------------------------------------------------------------


def gpu(device: int = 0) -> tuple[str, str]:
    """(name, compute capability such as "8.7") of CUDA device `device`.

    Asked through cuda-python (what the TensorRT runtime uses; `cuda.bindings.runtime` in
    cuda-python >= 12.6, `cuda.cudart` before 13.0), else through the CUDA driver library
    libcuda.so.1 with ctypes, which every JetPack has even without cuda-python.
    """
    found = _gpu_from_cuda_python(device) or _gpu_from_driver(device)
    if found is None:
        raise ConfigError("cannot identify the CUDA GPU (neither cuda-python nor libcuda.so.1 "
                          "answered): check the NVIDIA driver, or pip install cuda-python")
    return found


def _gpu_from_cuda_python(device: int) -> tuple[str, str] | None:
    cudart = optional_cudart()
    if cudart is None:
        return None
    try:
        err, prop = cudart.cudaGetDeviceProperties(device)
    except RuntimeError:  # cuda-python present, but its CUDA runtime library is not
        return None
    if err != cudart.cudaError_t.cudaSuccess:
        return None
    name = prop.name.decode("utf-8", "replace") if isinstance(prop.name, bytes) else str(prop.name)
    return name.rstrip("\x00").strip(), f"{prop.major}.{prop.minor}"


def _gpu_from_driver(device: int) -> tuple[str, str] | None:
    compute_capability_major, compute_capability_minor = 75, 76  # CUdevice_attribute, cuda.h
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    handle, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    name = ctypes.create_string_buffer(256)
    calls = (
        lambda: cuda.cuInit(0),
        lambda: cuda.cuDeviceGet(ctypes.byref(handle), device),
        lambda: cuda.cuDeviceGetName(name, len(name), handle),
        lambda: cuda.cuDeviceGetAttribute(ctypes.byref(major), compute_capability_major, handle),
        lambda: cuda.cuDeviceGetAttribute(ctypes.byref(minor), compute_capability_minor, handle),
    )
    if any(call() != 0 for call in calls):  # CUDA_SUCCESS is 0; stop at the first failure
        return None
    return name.value.decode("utf-8", "replace").strip(), f"{major.value}.{minor.value}"


# --- Building -----------------------------------------------------------------------------------


def build(onnx_bytes: bytes, spec: BuildSpec, progress: Progress | None = None) -> bytes:
    """Parse the ONNX model and build a serialized engine as `spec` says."""
    trt = import_tensorrt()
    logger = trt_logger()
    builder = trt.Builder(logger)
    strongly_typed = spec.precision == "int8" and hasattr(
        trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    network = builder.create_network(_network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(" ".join(str(parser.get_error(i)).split())
                           for i in range(parser.num_errors))
        raise ArtifactError(f"{spec.source}: TensorRT {trt.__version__} cannot parse this model: "
                            f"{errors or 'no reason given'}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_mib << 20)
    _set_precision(trt, builder, config, spec.precision, strongly_typed)
    if spec.input_shapes is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(spec.input_name, *spec.input_shapes)
        if config.add_optimization_profile(profile) < 0:
            raise ArtifactError(f"{spec.source}: TensorRT refused the shape profile "
                                f"{spec.input_shapes} for input {spec.input_name!r}")
    timing_cache = _use_timing_cache(config, spec.timing_cache)  # must outlive the build
    monitor = _progress_monitor(trt, progress)
    if monitor is not None:
        config.progress_monitor = monitor

    logger.errors.clear()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        if monitor is not None and monitor.cancelled:
            raise EngineBuildError(f"{spec.source}: the engine build was cancelled")
        reason = " | ".join(logger.errors) or "see the TensorRT messages above"
        raise EngineBuildError(f"{spec.source}: TensorRT {trt.__version__} could not build the "
                               f"engine: {reason}")
    if spec.timing_cache is not None:
        atomic_write_bytes(spec.timing_cache, bytes(timing_cache.serialize()))
    return bytes(serialized)


def _network_flags(trt: Any, strongly_typed: bool) -> int:
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def _set_precision(trt: Any, builder: Any, config: Any, precision: str,
                   strongly_typed: bool) -> None:
    if precision == "int8" and not getattr(builder, "platform_has_fast_int8", True):
        raise ConfigError("this GPU has no fast INT8 (Jetson Nano and TX2 do not): build an fp16 "
                          "engine from the FP32 model instead")
    if strongly_typed:
        return  # the Q/DQ nodes and tensor types decide; precision flags are not allowed
    if precision == "fp16" and not getattr(builder, "platform_has_fast_fp16", True):
        log.warning("this GPU has no fast FP16; the fp16 engine may not be faster than fp32")
    flags = {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[precision]
    for name in flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:
            raise ConfigError(f"TensorRT {trt.__version__} has no {name} builder flag (strongly "
                              "typed networks only); build the engine with TensorRT 8.5-10.x")
        config.set_flag(flag)


def _use_timing_cache(config: Any, path: Path | None) -> Any:
    """Attach a timing cache, loaded from `path` when there is one TensorRT accepts; returns it
    (it must outlive the build)."""
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    try:
        cache = config.create_timing_cache(data)
    except Exception:  # a damaged file; TensorRT's own error is in the log
        cache = None
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return cache
    if data:
        log.warning("%s: timing cache is from another GPU or TensorRT version or is damaged; "
                    "starting a fresh one", path)
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _progress_monitor(trt: Any, progress: Progress | None) -> Any:
    """An IProgressMonitor forwarding to progress(phase, done, total), or None where TensorRT
    has none (8.x). Returning False from progress, or Ctrl-C, cancels the build."""
    if progress is None or not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._totals: dict[str, int] = {}
            self.cancelled = False

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._totals[phase_name] = num_steps
            self._report(phase_name, 0, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            total = self._totals.get(phase_name, step + 1)
            self._report(phase_name, step + 1, total)
            return not self.cancelled

        def phase_finish(self, phase_name: str) -> None:
            self._totals.pop(phase_name, None)

        def _report(self, phase: str, done: int, total: int) -> None:
            # Exceptions must not cross into TensorRT's threads: cancel on Ctrl-C, log the rest.
            try:
                if progress(phase, done, total) is False:
                    self.cancelled = True
            except KeyboardInterrupt:
                self.cancelled = True
            except Exception:
                log.exception("engine build: the progress callback failed")

    return Monitor()
