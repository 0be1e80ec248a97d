"""Native TensorRT runtime: a serialized engine, cuda-python buffers, one CUDA stream.

Written against the name-based API every TensorRT from 8.5 (JetPack 5.1) to 10.x (JetPack 6)
has: `Runtime.deserialize_cuda_engine`, `create_execution_context`, `num_io_tensors` /
`get_tensor_name` / `get_tensor_mode` / `get_tensor_dtype` / `get_tensor_profile_shape`,
`set_input_shape`, `set_tensor_address` and `execute_async_v3`. Memory comes from cuda-python's
runtime binding (`cuda.bindings.runtime`, or `cuda.cudart` in cuda-python before 12.6); each of
its calls returns `(error, *results)` and a failed one raises StylecastError naming the call.

Per frame: the frame goes into a pinned host buffer, is copied to the device, the engine runs,
the output is copied back, the stream is synchronized. Buffers are (re)allocated when the input
shape changes (a dynamic engine), never per frame. On a Jetson the host buffers are mapped into
the GPU instead (zero-copy, see `use_zero_copy`), which drops both copies.

An `.onnx` model is first built into an engine (or found built) by
`stylecast.daemon.engines.engine_cache.ensure_engine`, keyed so a stale engine is never used.

tensorrt and cuda-python are imported only when an engine is opened; everything that is logic
rather than a TensorRT or CUDA call (precision, sizes, dtypes, I/O names, zero-copy choice) is a
small function here that the tests call without either.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylecast.core.artifact import Contract, model_kind, read_onnx_contract, read_sidecar
from stylecast.core.errors import ArtifactError, ConfigError, StylecastError
from stylecast.core.layouts import LAYOUTS
from stylecast.core.sizes import size_text
from stylecast.daemon.engines.engine_cache import BuildBackend, Notify, ensure_engine
from stylecast.daemon.engines.frame_fit import model_size
from stylecast.daemon.engines.nvidia_libs import import_cudart, import_tensorrt
from stylecast.daemon.engines.precision import choose_precision
from stylecast.daemon.engines.protocol import Size
from stylecast.daemon.engines.settings import EngineSettings
from stylecast.daemon.engines.tensor_io import from_model_output, to_model_input
from stylecast.daemon.engines.tensorrt_build import trt_logger

log = logging.getLogger(__name__)

REBUILD = "built with another TensorRT version or GPU: rebuild it with stylecast-export engine"

# TensorRT DataType names -> numpy. BF16/FP8/INT4 have no numpy type and are never our I/O.
NUMPY_DTYPES = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "UINT8": np.dtype(np.uint8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
}
# Where height and width sit in an input shape, per contract layout.
# --- Imports ------------------------------------------------------------------------------------


def native_tensorrt_available() -> bool:
    """True if tensorrt and a cuda-python runtime binding both import."""
    try:
        import_tensorrt()
        import_cudart()
    except ConfigError:
        return False
    return True


# --- Pure logic ---------------------------------------------------------------------------------


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """numpy dtype of a TensorRT DataType (or its name, e.g. "HALF")."""
    name = str(getattr(trt_dtype, "name", trt_dtype)).rsplit(".", 1)[-1]
    try:
        return NUMPY_DTYPES[name]
    except KeyError:
        raise ArtifactError(f"TensorRT tensor type {name} has no numpy equivalent; stylecast "
                            "artifacts use uint8, float16 or float32 I/O") from None


def buffer_nbytes(shape: Sequence[int], dtype: Any) -> int:
    """Bytes of a tensor; refuses unresolved (-1) dimensions."""
    if any(int(side) < 0 for side in shape):
        raise ValueError(f"tensor shape {tuple(shape)} is not fully known")
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def frame_hw(layout: str, shape: Sequence[int]) -> Size:
    """(height, width) of an input tensor shape in the contract's layout."""
    return LAYOUTS[layout].frame_size(shape)


def profile_size_range(layout: str, shapes: Sequence[Sequence[int]]) -> tuple[Size, Size]:
    """(min, max) frame sizes of an optimization profile's [min, opt, max] input shapes."""
    low, _, high = shapes
    return frame_hw(layout, low), frame_hw(layout, high)


def split_io(tensors: Iterable[tuple[str, str]], contract: Contract,
             source: str) -> tuple[str, str]:
    """Check an engine's (name, "INPUT"|"OUTPUT") tensors against the contract; return the
    input and output names to bind."""
    tensors = list(tensors)
    inputs = [name for name, mode in tensors if mode == "INPUT"]
    outputs = [name for name, mode in tensors if mode == "OUTPUT"]
    if inputs != [contract.input.name] or contract.output.name not in outputs:
        raise ArtifactError(
            f"{source}: engine inputs {inputs} / outputs {outputs} do not match the contract's "
            f"'{contract.input.name}' -> '{contract.output.name}'")
    return contract.input.name, contract.output.name


def use_zero_copy(integrated: bool, can_map_host_memory: bool, capability: tuple[int, int]) -> bool:
    """Map pinned host buffers into the GPU instead of copying, on Jetsons from Xavier on.

    An integrated GPU shares DRAM with the CPU, so cudaMemcpy there is a DRAM-to-DRAM copy that
    buys nothing: mapped memory lets the engine read the frame where the CPU wrote it. From
    Xavier (sm 7.2) on, Jetson pinned memory is I/O-coherent and stays CPU-cached; on Nano, TX1
    and TX2 (sm 5.3/6.2) it is not CPU-cached, so the CPU's frame writes and output reads would
    get slower than the copies they save: those keep device buffers and copies. (NVIDIA's CUDA
    for Tegra guide; to confirm with measurements on each board.) A discrete GPU reads mapped
    memory over PCIe on every access: always copies there.
    """
    return integrated and can_map_host_memory and tuple(capability) >= (7, 2)


# --- CUDA calls ---------------------------------------------------------------------------------


def cuda_check(cudart: Any, result: Any, call: str) -> Any:
    """Unpack cuda-python's `(error, *results)`; raise StylecastError naming `call` on failure."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise StylecastError(f"CUDA {call} failed: {getattr(err, 'name', err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass
class Buffer:
    """One tensor's pinned host memory (as a numpy array) and the device address bound to it."""

    host: np.ndarray
    host_ptr: int
    device_ptr: int
    nbytes: int
    mapped: bool  # device_ptr is host memory mapped into the GPU: nothing to copy


def allocate(cudart: Any, shape: Sequence[int], dtype: np.dtype, *, mapped: bool) -> Buffer:
    nbytes = buffer_nbytes(shape, dtype)
    if mapped:
        # No cudaSetDeviceFlags(cudaDeviceMapHost) needed: the runtime API's primary context
        # has host mapping enabled implicitly.
        host_ptr = int(cuda_check(cudart, cudart.cudaHostAlloc(nbytes, cudart.cudaHostAllocMapped),
                                  "cudaHostAlloc"))
        device_ptr = int(cuda_check(cudart, cudart.cudaHostGetDevicePointer(host_ptr, 0),
                                    "cudaHostGetDevicePointer"))
    else:
        host_ptr = int(cuda_check(cudart, cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
        try:
            device_ptr = int(cuda_check(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc"))
        except StylecastError:
            cudart.cudaFreeHost(host_ptr)
            raise
    raw = (ctypes.c_uint8 * nbytes).from_address(host_ptr)
    host = np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(tuple(shape))
    return Buffer(host, host_ptr, device_ptr, nbytes, mapped)


def release(cudart: Any, buffer: Buffer) -> None:
    if not buffer.mapped:
        cuda_check(cudart, cudart.cudaFree(buffer.device_ptr), "cudaFree")
    cuda_check(cudart, cudart.cudaFreeHost(buffer.host_ptr), "cudaFreeHost")


# --- The engine ---------------------------------------------------------------------------------


class TensorrtEngine:
    """A deserialized TensorRT engine with its buffers. Call it with (H, W, 3) uint8 RGB frames
    of a size the engine takes (FittedEngine sees to that)."""

    def __init__(self, path: str | Path, contract: Contract) -> None:
        self.path = Path(path)
        self.contract = contract
        trt = import_tensorrt()
        self._cudart = cudart = import_cudart()
        self._runtime = trt.Runtime(trt_logger())  # kept: the engine must not outlive it
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ArtifactError(f"{self.path}: TensorRT {trt.__version__} cannot load this "
                                f"engine: {REBUILD}")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise StylecastError(f"{self.path}: TensorRT could not create an execution context "
                                 "(out of GPU memory?)")
        tensors = [(name, self._engine.get_tensor_mode(name).name)
                   for name in map(self._engine.get_tensor_name,
                                   range(self._engine.num_io_tensors))]
        self._input, self._output = split_io(tensors, contract, str(self.path))
        self._dtypes = {name: self._checked_dtype(name, spec.dtype) for name, spec in
                        ((self._input, contract.input), (self._output, contract.output))}
        self._dynamic = -1 in tuple(self._engine.get_tensor_shape(self._input))
        self.size_range: tuple[Size, Size] | None = None
        if self._dynamic:
            shapes = self._engine.get_tensor_profile_shape(self._input, 0)
            self.size_range = profile_size_range(contract.input.layout, shapes)
        gpu, self._zero_copy = self._device()
        self._stream = cuda_check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._buffers: tuple[Buffer, Buffer] | None = None
        self._input_shape: tuple[int, ...] | None = None
        memory = "zero-copy mapped memory" if self._zero_copy else "pinned copies"
        self.description = (f"TensorRT {trt.__version__} on {gpu}, {memory}, {self.path.name} "
                            f"({contract.precision})")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self._context is None:
            raise StylecastError(f"{self.path}: the engine is closed")
        feed = to_model_input(frame, self.contract.input)
        if feed.shape != self._input_shape:
            self._bind(feed.shape)
        assert self._buffers is not None
        source, target = self._buffers
        np.copyto(source.host, feed)
        cudart, stream = self._cudart, self._stream
        kinds = cudart.cudaMemcpyKind
        if not source.mapped:
            cuda_check(cudart, cudart.cudaMemcpyAsync(
                source.device_ptr, source.host_ptr, source.nbytes,
                kinds.cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync (to the GPU)")
        if not self._context.execute_async_v3(int(stream)):
            raise StylecastError(f"{self.path}: TensorRT execute_async_v3 failed (see the "
                                 "TensorRT messages above)")
        if not target.mapped:
            cuda_check(cudart, cudart.cudaMemcpyAsync(
                target.host_ptr, target.device_ptr, target.nbytes,
                kinds.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync (from the GPU)")
        cuda_check(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        output = from_model_output(target.host, self.contract.output)
        # The host buffer is overwritten by the next frame: hand out a copy of it.
        return output.copy() if np.may_share_memory(output, target.host) else output

    def close(self) -> None:
        if self._context is None:
            return
        self._free_buffers()
        cuda_check(self._cudart, self._cudart.cudaStreamDestroy(self._stream),
                   "cudaStreamDestroy")
        self._context = self._engine = self._runtime = None  # context first, then the engine

    def _bind(self, shape: tuple[int, ...]) -> None:
        """(Re)allocate both buffers for an input of `shape` and bind them to the context."""
        context = self._context
        if self._dynamic and not context.set_input_shape(self._input, shape):
            low, high = self.size_range
            raise ValueError(f"{self.path}: input shape {shape} is outside the engine's profile "
                             f"(frame sizes {size_text(*low)} to {size_text(*high)})")
        if not self._dynamic and tuple(self._engine.get_tensor_shape(self._input)) != shape:
            raise ValueError(f"{self.path}: the engine takes input shape "
                             f"{tuple(self._engine.get_tensor_shape(self._input))}, not {shape}")
        output_shape = tuple(context.get_tensor_shape(self._output))
        self._free_buffers()
        source = allocate(self._cudart, shape, self._dtypes[self._input], mapped=self._zero_copy)
        try:
            target = allocate(self._cudart, output_shape, self._dtypes[self._output],
                              mapped=self._zero_copy)
        except StylecastError:
            release(self._cudart, source)
            raise
        self._buffers = (source, target)
        for name, buffer in ((self._input, source), (self._output, target)):
            if not context.set_tensor_address(name, buffer.device_ptr):
                raise StylecastError(f"{self.path}: TensorRT refused the buffer for {name!r}")
        self._input_shape = shape
        log.info("%s: buffers for input %s, output %s (%s)", self.path.name, shape, output_shape,
                 "mapped" if self._zero_copy else "pinned + device")

    def _free_buffers(self) -> None:
        if self._buffers is not None:
            for buffer in self._buffers:
                release(self._cudart, buffer)
        self._buffers = None
        self._input_shape = None

    def _checked_dtype(self, name: str, contract_dtype: str) -> np.dtype:
        dtype = numpy_dtype(self._engine.get_tensor_dtype(name))
        if dtype != np.dtype(contract_dtype):
            raise ArtifactError(f"{self.path}: engine tensor {name!r} is {dtype}, the contract "
                                f"says {contract_dtype}: {REBUILD}")
        return dtype

    def _device(self) -> tuple[str, bool]:
        """(GPU name, whether to use zero-copy buffers) of the current CUDA device."""
        cudart = self._cudart
        try:
            device = cuda_check(cudart, cudart.cudaGetDevice(), "cudaGetDevice")
            props = cuda_check(cudart, cudart.cudaGetDeviceProperties(device),
                               "cudaGetDeviceProperties")
        except RuntimeError as err:  # cuda-python is there, its CUDA runtime library is not
            raise ConfigError(f"cuda-python cannot load the CUDA runtime ({err})") from None
        name = props.name.decode("utf-8", "replace") if isinstance(props.name, bytes) \
            else str(props.name)
        zero_copy = use_zero_copy(bool(props.integrated), bool(props.canMapHostMemory),
                                  (int(props.major), int(props.minor)))
        return name.rstrip("\x00").strip(), zero_copy


# --- Opening a model ----------------------------------------------------------------------------


def engine_for_onnx(onnx_path: str | Path, settings: EngineSettings, *,
                    frame_size: Size | None = None, notify: Notify | None = None,
                    builder: BuildBackend | None = None) -> Path:
    """The cached TensorRT engine for an ONNX artifact, built first if there is none.

    A dynamic model is built for the camera's `frame_size`, rounded to the model's size
    multiple (frames are resized to it). `builder` replaces the TensorRT build backend (tests).
    """
    contract = read_onnx_contract(onnx_path)
    precision = choose_precision(settings.precision, contract.precision)
    size = None
    if contract.is_dynamic:
        if frame_size is None:
            raise ConfigError(f"{onnx_path} has a dynamic input size: its TensorRT engine is "
                              "built for the camera's frame size, which was not given")
        size = model_size(contract, frame_size)
    return ensure_engine(onnx_path, cache_dir=settings.cache_dir, precision=precision,
                         size=size, workspace_mib=settings.workspace_mib, notify=notify,
                         builder=builder)


def open_tensorrt(path: str | Path, settings: EngineSettings, *, frame_size: Size | None = None,
                  notify: Notify | None = None) -> TensorrtEngine:
    """A TensorrtEngine for an `.engine`/`.plan` file (with its sidecar), or for an `.onnx`
    artifact through the engine cache."""
    path = Path(path)
    if model_kind(path) == "onnx":
        import_tensorrt()  # before minutes of building, not after
        import_cudart()
        path = engine_for_onnx(path, settings, frame_size=frame_size, notify=notify)
    contract, _ = read_sidecar(path)
    return TensorrtEngine(path, contract)
