"""The one stand-in for NVIDIA's `tensorrt` Python module (and cuda-python's runtime binding):
only the parts stylecast calls, with the names and shapes of TensorRT's documented Python API.

TensorRT and CUDA cannot run on the machines that run our tests. This module lets the code that
surrounds them run anyway, in two places:

- the engine adapter (daemon/engines/tensorrt_engine.py): `Runtime.deserialize_cuda_engine` ->
  ICudaEngine -> IExecutionContext, whose "GPU" computes `255 - x` with real memory copies
  between the buffers that `FakeCudart` hands out (host memory standing in for the device);
- the builder (daemon/engines/tensorrt_build.py): `Builder`, `NetworkDefinitionCreationFlag`,
  `OnnxParser`, `IBuilderConfig` (`BuilderFlag`, `MemoryPoolType`, optimization profiles, the
  timing cache, `progress_monitor`), `ILogger` and `IProgressMonitor`.

It is not a TensorRT: it optimizes nothing. It records what it is asked (every object keeps its
settings; `FakeTensorrt.builders`, `.configs`, `.timing_caches` and `.builds` list them) and it
enforces the rules of the real API that our code depends on, so a test can fail:

- what differs by version, after the Python API pages of TensorRT 8.5 (JetPack 5.1) and 10.x
  (JetPack 6; docs.nvidia.com/deeplearning/tensorrt/.../python_api/infer/Core/Builder.html):
  8.5 has `NetworkDefinitionCreationFlag.EXPLICIT_BATCH` (0) and `EXPLICIT_PRECISION` (1) and its
  ONNX parser needs an explicit-batch network; 10.x has `EXPLICIT_BATCH` (0, "[DEPRECATED]
  Ignored") and `STRONGLY_TYPED` (1), plus `IProgressMonitor` and `IBuilderConfig.progress_monitor`
  (neither exists in 8.5); versions 9.x are not modelled;
- subclasses of `ILogger` and `IProgressMonitor` must call the base `__init__` (pybind11 refuses
  them otherwise) and implement its methods: `log(severity, msg)`; `phase_start(phase_name,
  parent_phase, num_steps)`, `step_complete(phase_name, step) -> bool` (False cancels the build)
  and `phase_finish(phase_name)` (ProgressMonitor.html);
- precision builder flags are refused on a strongly typed network; a network with a dynamic
  input needs an optimization profile for it; `add_optimization_profile` returns -1 for a
  profile whose min <= opt <= max does not hold;
- `create_timing_cache(b"")` is a new cache, a serialized one is loaded, a damaged one gives None
  (or raises, with `damaged_timing_cache_raises`); `set_timing_cache(cache, ignore_mismatch=False)`
  returns False for a cache from another TensorRT or GPU (TimingCache.html); a build times only
  the layers its cache does not know and adds them to it; `serialize()` gives the bytes back.

A built engine is ENGINE_MAGIC + ":" + JSON naming what the build was asked for
(`FakeTensorrt.describe` reads it back), and `Runtime` deserializes it into an engine with the
network's I/O names, shapes and profile.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx

ENGINE_MAGIC = b"FAKE-ENGINE"
TIMING_CACHE_MAGIC = b"TRTC"
STATIC_HW = (64, 96)  # the engine Runtime gives for the bare ENGINE_MAGIC (test_engines.py)
DEFAULT_PROFILE = [(16, 16, 3), (48, 64, 3), (*STATIC_HW, 3)]
BUILD_PHASES = (("Building engine", None, 2), ("Timing layers", "Building engine", 3))


class ILogger:
    """tensorrt.ILogger: subclasses implement log(severity, msg)."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self) -> None:
        self._base_initialised = True

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        raise NotImplementedError("tensorrt.ILogger.log is pure virtual")


class IProgressMonitor:
    """tensorrt.IProgressMonitor (TensorRT >= 10 here): the application's progress callbacks."""

    def __init__(self) -> None:
        self._base_initialised = True

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        raise NotImplementedError("tensorrt.IProgressMonitor.phase_start is pure virtual")

    def step_complete(self, phase_name: str, step: int) -> bool:
        raise NotImplementedError("tensorrt.IProgressMonitor.step_complete is pure virtual")

    def phase_finish(self, phase_name: str) -> None:
        raise NotImplementedError("tensorrt.IProgressMonitor.phase_finish is pure virtual")


def _check_base_init(obj: object, base: type) -> None:
    if not isinstance(obj, base):
        raise TypeError(f"expected a tensorrt.{base.__name__}, got {type(obj).__name__}")
    if not getattr(obj, "_base_initialised", False):
        raise TypeError(f"tensorrt.tensorrt.{base.__name__}.__init__() must be called when "
                        "overriding __init__")


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3


BUILDER_FLAGS = {"FP16": 0, "INT8": 1, "DEBUG": 2, "GPU_FALLBACK": 3, "REFIT": 5, "TF32": 7}


class FakeTensorrt:
    """`import tensorrt` as far as stylecast goes. Build-side knobs: `parse_errors` (the ONNX
    parser fails with these), `build_error` (the build logs it as an ERROR and returns None),
    `build_messages` ((severity, msg) the build logs), `phases` (what the build reports to a
    progress monitor), `damaged_timing_cache_raises`."""

    def __init__(self, version: str = "10.3.0", *, dynamic: bool = False,
                 gpu_name: str = "Fake GPU", fast_fp16: bool | None = True,
                 fast_int8: bool | None = True, builder_flags: dict[str, int] | None = None):
        self.__version__ = version
        major = int(version.split(".")[0])
        if major not in (8, 10):
            raise ValueError(f"TensorRT {version} is not modelled (8.5-8.6 and 10.x are)")
        self.modern = major >= 10
        self.dynamic = dynamic  # for the bare ENGINE_MAGIC (test_engines.py)
        self.gpu_name = gpu_name
        self.fast_fp16, self.fast_int8 = fast_fp16, fast_int8
        self.ILogger = ILogger
        self.MemoryPoolType = MemoryPoolType
        self.BuilderFlag = enum.IntEnum("BuilderFlag", builder_flags or BUILDER_FLAGS)
        if self.modern:
            self.NetworkDefinitionCreationFlag = enum.IntEnum(
                "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
            self.IProgressMonitor = IProgressMonitor
        else:
            self.NetworkDefinitionCreationFlag = enum.IntEnum(
                "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1})
        self.parse_errors: list[str] = []
        self.build_error: str | None = None
        self.build_messages: list[tuple[ILogger.Severity, str]] = []
        self.phases = BUILD_PHASES
        self.damaged_timing_cache_raises = False
        self.builders: list[FakeBuilder] = []
        self.configs: list[FakeBuilderConfig] = []
        self.timing_caches: list[FakeTimingCache] = []
        self.builds: list[dict[str, Any]] = []  # what each successful build was asked for

    # --- the module's classes, as callables ------------------------------------------------------

    def Builder(self, logger: ILogger) -> FakeBuilder:
        return FakeBuilder(self, logger)

    def OnnxParser(self, network: FakeNetwork, logger: ILogger) -> FakeOnnxParser:
        return FakeOnnxParser(self, network, logger)

    def Runtime(self, logger: Any) -> SimpleNamespace:
        return SimpleNamespace(deserialize_cuda_engine=self._deserialize)

    # --- engines ---------------------------------------------------------------------------------

    def timing_cache_header(self) -> bytes:
        return b"|".join([TIMING_CACHE_MAGIC, self.__version__.encode(), self.gpu_name.encode()])

    @staticmethod
    def describe(engine: bytes) -> dict[str, Any]:
        """What a stand-in build was asked for, read back from its engine bytes."""
        magic, _, summary = bytes(engine).partition(b":")
        assert magic == ENGINE_MAGIC, engine[:40]
        return json.loads(summary)

    def _deserialize(self, data: bytes) -> FakeTrtEngine | None:
        if data == ENGINE_MAGIC:
            return FakeTrtEngine(profile=DEFAULT_PROFILE if self.dynamic else None)
        if not data.startswith(ENGINE_MAGIC + b":"):
            return None  # built elsewhere: TensorRT logs an error and returns None
        summary = self.describe(data)
        if summary["tensorrt"] != self.__version__ or summary["gpu"] != self.gpu_name:
            return None
        (name, dims), = summary["inputs"].items()
        profile = summary["profiles"][0][name] if summary["profiles"] else None
        static = None if profile else tuple(dims)
        return FakeTrtEngine(static=static, profile=profile, names=(name, summary["outputs"][0]))


# --- building ----------------------------------------------------------------------------------


class FakeNetwork:
    """INetworkDefinition: its creation flags, and the ONNX graph once parsed."""

    def __init__(self, builder: FakeBuilder, flags: int) -> None:
        self.builder, self.flags = builder, flags
        self.inputs: dict[str, list[int]] = {}  # name -> dims, -1 where dynamic
        self.outputs: list[str] = []
        self.onnx_sha256: str | None = None

    def flag_names(self) -> list[str]:
        flags = self.builder.trt.NetworkDefinitionCreationFlag
        return [flag.name for flag in flags if self.flags & (1 << int(flag))]

    @property
    def strongly_typed(self) -> bool:
        return "STRONGLY_TYPED" in self.flag_names()


class FakeOnnxParser:
    def __init__(self, trt: FakeTensorrt, network: FakeNetwork, logger: ILogger) -> None:
        _check_base_init(logger, ILogger)
        self.trt, self.network = trt, network
        self.errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]

    def parse(self, model: bytes, path: str | None = None) -> bool:
        self.errors = list(self.trt.parse_errors)
        if not self.trt.modern and not self.network.flags & 1:
            self.errors.append("ModelImporter.cpp: the ONNX parser only supports networks with "
                               "an explicit batch dimension")
        try:
            graph = onnx.load_from_string(bytes(model)).graph
        except Exception as err:  # the real parser reports errors, it does not raise
            self.errors.append(f"ModelImporter.cpp: failed to parse ONNX model: {err}")
        if self.errors:
            return False
        initializers = {tensor.name for tensor in graph.initializer}
        for value in graph.input:
            if value.name not in initializers:
                dims = value.type.tensor_type.shape.dim
                self.network.inputs[value.name] = [d.dim_value if d.HasField("dim_value") else -1
                                                   for d in dims]
        self.network.outputs = [value.name for value in graph.output]
        self.network.onnx_sha256 = hashlib.sha256(bytes(model)).hexdigest()
        return True


class FakeProfile:
    """IOptimizationProfile."""

    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))

    def is_valid(self) -> bool:
        return bool(self.shapes) and all(
            len(low) == len(mid) == len(high) and all(a <= b <= c for a, b, c in
                                                       zip(low, mid, high, strict=True))
            for low, mid, high in self.shapes.values())


class FakeTimingCache:
    """ITimingCache: a header (TensorRT version and GPU) and the layers timed so far."""

    def __init__(self, header: bytes, entries: list[str]) -> None:
        self.header, self.entries = header, entries
        self.loaded_from: bytes = b""

    def serialize(self) -> memoryview:  # an IHostMemory: a buffer
        return memoryview(b"|".join([self.header, ";".join(self.entries).encode()]))


class FakeBuilderConfig:
    """IBuilderConfig."""

    def __init__(self, builder: FakeBuilder) -> None:
        self.builder = builder
        self.flags: list[Any] = []
        self.pool_limits: dict[MemoryPoolType, int] = {}
        self.profiles: list[FakeProfile] = []
        self.timing_cache: FakeTimingCache | None = None
        self.timing_cache_calls: list[tuple[FakeTimingCache | None, bool]] = []
        self._monitor: IProgressMonitor | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self.pool_limits[MemoryPoolType(pool)] = pool_size

    def set_flag(self, flag: Any) -> None:
        if not isinstance(flag, self.builder.trt.BuilderFlag):
            raise TypeError(f"set_flag takes a tensorrt.BuilderFlag, not {flag!r}")
        self.flags.append(flag)

    def flag_names(self) -> list[str]:
        return [flag.name for flag in self.flags]

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        if not profile.is_valid():
            self.builder.log(ILogger.Severity.ERROR, "IBuilderConfig::addOptimizationProfile: "
                             "the profile is not valid (min <= opt <= max)")
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> FakeTimingCache | None:
        trt = self.builder.trt
        data = bytes(serialized_timing_cache)
        if not data:
            cache = FakeTimingCache(trt.timing_cache_header(), [])
        elif data.startswith(TIMING_CACHE_MAGIC + b"|") and data.count(b"|") == 3:
            magic, version, gpu, entries = data.split(b"|")
            cache = FakeTimingCache(b"|".join([magic, version, gpu]),
                                    [e for e in entries.decode().split(";") if e])
        else:
            self.builder.log(ILogger.Severity.ERROR, "Failed to deserialize the timing cache")
            if trt.damaged_timing_cache_raises:
                raise RuntimeError("Failed to deserialize the timing cache")
            return None
        cache.loaded_from = data
        trt.timing_caches.append(cache)
        return cache

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache_calls.append((cache, ignore_mismatch))
        if cache.header != self.builder.trt.timing_cache_header() and not ignore_mismatch:
            self.builder.log(ILogger.Severity.WARNING, "The timing cache was created on another "
                             "device or TensorRT version; it is not used")
            return False
        self.timing_cache = cache
        return True

    @property
    def progress_monitor(self) -> IProgressMonitor | None:
        self._need_progress_monitor()
        return self._monitor

    @progress_monitor.setter
    def progress_monitor(self, monitor: IProgressMonitor) -> None:
        self._need_progress_monitor()
        _check_base_init(monitor, IProgressMonitor)
        self._monitor = monitor

    def _need_progress_monitor(self) -> None:
        if not self.builder.trt.modern:
            raise AttributeError("'tensorrt.tensorrt.IBuilderConfig' object has no attribute "
                                 "'progress_monitor'")


class FakeBuilder:
    """Builder: networks, configs, profiles, and build_serialized_network."""

    def __init__(self, trt: FakeTensorrt, logger: ILogger) -> None:
        _check_base_init(logger, ILogger)
        self.trt, self.logger = trt, logger
        if trt.fast_fp16 is not None:
            self.platform_has_fast_fp16 = trt.fast_fp16
        if trt.fast_int8 is not None:
            self.platform_has_fast_int8 = trt.fast_int8
        self.networks: list[FakeNetwork] = []
        trt.builders.append(self)

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        self.logger.log(severity, msg)

    def create_network(self, flags: int = 0) -> FakeNetwork:
        if self.trt.modern and flags & 1:
            self.log(ILogger.Severity.WARNING, "NetworkDefinitionCreationFlag::kEXPLICIT_BATCH "
                     "is deprecated and has no effect")
        network = FakeNetwork(self, flags)
        self.networks.append(network)
        return network

    def create_builder_config(self) -> FakeBuilderConfig:
        config = FakeBuilderConfig(self)
        self.trt.configs.append(config)
        return config

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(self, network: FakeNetwork,
                                 config: FakeBuilderConfig) -> memoryview | None:
        assert network.builder is self and config.builder is self
        trt = self.trt
        self.log(ILogger.Severity.INFO, "[MemUsageChange] Init builder kernel library")
        for severity, message in trt.build_messages:
            self.log(severity, message)
        refused = self._refusal(network, config)
        if refused is not None:
            self.log(ILogger.Severity.ERROR, refused)
            return None
        if not self._run_phases(config._monitor):
            self.log(ILogger.Severity.ERROR, "Build was cancelled by the progress monitor")
            return None
        layers = [f"{network.onnx_sha256[:12]}:{flag}" for flag in
                  sorted(config.flag_names()) or ["fp32"]]
        cache = config.timing_cache
        timed = [layer for layer in layers if cache is None or layer not in cache.entries]
        if cache is not None:
            cache.entries.extend(timed)
        summary = {
            "tensorrt": trt.__version__, "gpu": trt.gpu_name,
            "network_flags": network.flag_names(), "builder_flags": config.flag_names(),
            "workspace_bytes": config.pool_limits.get(MemoryPoolType.WORKSPACE),
            "inputs": network.inputs, "outputs": network.outputs,
            "profiles": [{name: [list(s) for s in shapes] for name, shapes in p.shapes.items()}
                         for p in config.profiles],
            "onnx_sha256": network.onnx_sha256, "timed_layers": timed,
            "cached_layers": [layer for layer in layers if layer not in timed],
        }
        trt.builds.append(summary)
        return memoryview(ENGINE_MAGIC + b":" + json.dumps(summary).encode())

    def _refusal(self, network: FakeNetwork, config: FakeBuilderConfig) -> str | None:
        if self.trt.build_error is not None:
            return self.trt.build_error
        if network.onnx_sha256 is None:
            return "Network must have at least one output"
        precision = {"FP16", "INT8"} & set(config.flag_names())
        if network.strongly_typed and precision:
            return (f"BuilderFlag {', '.join(sorted(precision))} is not allowed with a strongly "
                    "typed network")
        for name, dims in network.inputs.items():
            if -1 not in dims:
                continue
            if not any(name in profile.shapes for profile in config.profiles):
                return (f"Network has dynamic or shape inputs, but no optimization profile has "
                        f"been defined (input {name})")
            for profile in config.profiles:
                for shape in profile.shapes.get(name, ()):
                    if len(shape) != len(dims) or any(d not in (-1, s)
                                                      for d, s in zip(dims, shape, strict=False)):
                        return f"profile shape {shape} does not fit input {name} {dims}"
        return None

    def _run_phases(self, monitor: IProgressMonitor | None) -> bool:
        """Report the build's phases as TensorRT does: a child phase inside its parent, steps
        0..n-1, and phase_finish for every started phase even after a cancel."""
        if monitor is None:
            return True
        started: list[str] = []
        try:
            for name, parent, steps in self.trt.phases:
                while started and started[-1] != parent:
                    monitor.phase_finish(started.pop())
                monitor.phase_start(name, parent, steps)
                started.append(name)
                for step in range(steps):
                    if monitor.step_complete(name, step) is False:
                        return False
            return True
        finally:
            while started:
                monitor.phase_finish(started.pop())


# --- running ------------------------------------------------------------------------------------


def _read(address: int, shape) -> np.ndarray:
    nbytes = int(np.prod(shape))
    return np.frombuffer((ctypes.c_uint8 * nbytes).from_address(address), np.uint8).reshape(shape)


class FakeContext:
    """IExecutionContext: runs `255 - x` from the bound input address into the output's."""

    def __init__(self, engine: FakeTrtEngine) -> None:
        self.engine = engine
        self.shape = None if engine.dynamic else engine.static
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name, shape):
        (low, _, high) = self.engine.profile
        if not all(a <= b <= c for a, b, c in zip(low, shape, high, strict=True)):
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shape

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream):
        assert stream == 1234
        source_name, result_name = self.engine.names
        source = _read(self.addresses[source_name], self.shape)
        result = (255 - source).tobytes()
        ctypes.memmove(self.addresses[result_name], result, len(result))
        return True


class FakeTrtEngine:
    """ICudaEngine with one uint8 input and one uint8 output."""

    def __init__(self, *, static: tuple[int, ...] | None = (*STATIC_HW, 3),
                 profile: list | None = None, names: tuple[str, str] = ("image", "stylized")):
        self.dynamic = profile is not None
        self.static = tuple(static) if static is not None else None
        self.profile = [tuple(shape) for shape in profile] if profile is not None else None
        self.names = names
        self.num_io_tensors = 2

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return SimpleNamespace(name="INPUT" if name == self.names[0] else "OUTPUT")

    def get_tensor_dtype(self, name):
        return SimpleNamespace(name="UINT8")

    def get_tensor_shape(self, name):
        return (-1, -1, 3) if self.dynamic else self.static

    def get_tensor_profile_shape(self, name, index):
        assert index == 0
        return self.profile

    def create_execution_context(self):
        return FakeContext(self)


class FakeCudart:
    """cuda-python's runtime calls stylecast makes, on host memory: (error, *results).
    `fail` names a call that fails; `library_missing` makes every call raise as cuda-python does
    when its CUDA runtime library cannot be loaded."""

    class cudaError_t(enum.Enum):
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2
        cudaErrorNoDevice = 100

    class cudaMemcpyKind(enum.Enum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    cudaHostAllocMapped = 2

    def __init__(self, *, integrated=False, capability=(8, 6), name=b"Fake GPU\x00", fail=None,
                 library_missing=False):
        self.props = SimpleNamespace(name=name, integrated=int(integrated),
                                     canMapHostMemory=1, major=capability[0],
                                     minor=capability[1])
        self.fail = fail
        self.library_missing = library_missing
        self.blocks: dict[int, tuple[ctypes.Array, str]] = {}
        self.copies: list[str] = []
        self.streams = 0

    def _ok(self, *values):
        return (self.cudaError_t.cudaSuccess, *values)

    def _alloc(self, call, nbytes, kind):
        if call == self.fail:
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        block = ctypes.create_string_buffer(nbytes)
        self.blocks[ctypes.addressof(block)] = (block, kind)
        return self._ok(ctypes.addressof(block))

    def _free(self, pointer, kinds):
        assert self.blocks.pop(pointer)[1] in kinds
        return self._ok()

    def kinds(self):
        return sorted(kind for _, kind in self.blocks.values())

    def cudaGetDevice(self):
        return self._ok(0)

    def cudaGetDeviceProperties(self, device):
        if self.library_missing:
            raise RuntimeError("Failed to dlopen libcudart.so.12")
        if self.fail == "cudaGetDeviceProperties":
            return (self.cudaError_t.cudaErrorNoDevice, None)
        return self._ok(self.props)

    def cudaStreamCreate(self):
        self.streams += 1
        return self._ok(1234)

    def cudaStreamDestroy(self, stream):
        self.streams -= 1
        return self._ok()

    def cudaStreamSynchronize(self, stream):
        return self._ok()

    def cudaMallocHost(self, nbytes):
        return self._alloc("cudaMallocHost", nbytes, "pinned")

    def cudaMalloc(self, nbytes):
        return self._alloc("cudaMalloc", nbytes, "device")

    def cudaHostAlloc(self, nbytes, flags):
        assert flags == self.cudaHostAllocMapped
        return self._alloc("cudaHostAlloc", nbytes, "mapped")

    def cudaHostGetDevicePointer(self, pointer, flags):
        assert self.blocks[pointer][1] == "mapped"
        return self._ok(pointer)

    def cudaFree(self, pointer):
        return self._free(pointer, {"device"})

    def cudaFreeHost(self, pointer):
        return self._free(pointer, {"pinned", "mapped"})

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        assert stream == 1234
        ctypes.memmove(dst, src, nbytes)
        self.copies.append(kind.name)
        return self._ok()
