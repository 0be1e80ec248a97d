"""`stylecast-export quantize`: an FP32 artifact becomes an FP16 or an INT8 (Q/DQ) one.

    FP32 ONNX --fp16--> every float tensor in FP16, graph I/O as the contract says
              --int8--> quant_pre_process -> quantize_static (Q/DQ, static calibration on a
                        folder of images); pixel pre/post-processing and kept layers stay FP32
    -> the input's contract with the new precision -> quality (PSNR/SSIM to FP32 on held-out
    photos), size and ONNX Runtime CPU latency of both -> written atomically, or not at all

FP16 uses ONNX Runtime's fork of the converter (onnxruntime.transformers.float16):
onnxconverter-common 1.16 leaves the uint8->float input Cast at float32 and keeps Resize in
FP32 behind stale value_info, and onnx.checker rejects its result ("W has inconsistent type
tensor(float16)"); the fork retargets the Cast and converts the whole generator.

INT8 targets (settings and default FP32 layers in SETTINGS / DEFAULT_KEEP_FP32):
- tensorrt: symmetric int8 activations and weights (zero points 0), weights per output channel
  (axis 0), Q/DQ on the inputs of every Conv and residual Add; first and last conv stay FP32.
- cpu: uint8 activations, int8 weights, and only the low-resolution core (the inverted-residual
  body) quantized. ONNX Runtime's int8 kernels run NHWC: at full and half resolution, with few
  channels, its uint8 Conv and nearest Resize are slower than the FP32 NCHWc ones they replace,
  so quantizing them makes the model slower, not faster (measured; see DEFAULT_KEEP_FP32).
"""

from __future__ import annotations

import argparse
import fnmatch
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from tqdm import tqdm

from stylecast.core.artifact import Contract, read_onnx_contract, write_onnx_metadata
from stylecast.core.atomic import atomic_path, check_writable
from stylecast.core.errors import ArtifactError, InputError, StylecastError
from stylecast.core.layouts import LAYOUTS
from stylecast.core.sizes import size_flag_text, size_json, size_text
from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine, to_model_input
from stylecast.export.verification import Comparison, compare, load_images

log = logging.getLogger(__name__)

Target = Literal["cpu", "tensorrt"]
TARGETS: tuple[Target, ...] = ("cpu", "tensorrt")
# keep_fp32 aliases: the first / the last convolution; every node above the lowest resolution.
FIRST, LAST, HIGH_RES = "first", "last", "high-res"
# nano at 480x640, 2 threads, ONNX Runtime 1.32 on AVX-512 VNNI x86: FP32 27-30 ms; INT8 with
# first+last conv in FP32 32 ms (0.87x), everything quantized 29 ms (0.96x), only the 1/4
# resolution core ~22 ms (1.2-1.35x) at the best quality too. Presets small 1.60x, base 2.30x.
DEFAULT_KEEP_FP32: dict[str, tuple[str, ...]] = {"cpu": (HIGH_RES,), "tensorrt": (FIRST, LAST)}
# A subpixel tail (swift) has no convolution at full resolution, and its half-resolution layers
# gain from INT8 too: swift at 480x640, 2 threads, ORT 1.32, AMD EPYC Zen 4: FP32 26.8 ms,
# INT8 of the 1/4 core only 17.6 ms, every layer 17.5 ms (720x1280: 98.3, 67.0, 59.0 ms).
SUBPIXEL_KEEP_FP32: dict[str, tuple[str, ...]] = {"cpu": (), "tensorrt": (FIRST, LAST)}
DEFAULT_CALIB_SIZE = (256, 256)  # calibration crops for models with dynamic height and width
CALIB_IMAGES = 64  # at most this many calibration images are used (the first, sorted by path)
TARGET_PSNR_DB = {"fp16": 40.0, "int8": 35.0}  # quality to FP32 we aim for (docs/architecture.md)
WARMUP_RUNS, TIMED_RUNS, TIMING_ROUNDS = 3, 10, 3
# ops whose output shape onnxruntime's symbolic shape inference cannot work out on dynamic sizes
SYMBOLIC_SHAPE_GAPS = frozenset({"DepthToSpace"})


@dataclass(frozen=True)
class Int8Settings:
    """The quantize_static arguments that differ between targets."""

    op_types: tuple[str, ...]
    activation_type: str  # a QuantType member name
    weight_type: str
    per_channel: bool
    reduce_range: bool
    extra_options: dict[str, Any] = field(default_factory=dict)


# U8 activations / S8 weights are what ONNX Runtime's x86 kernels run natively (S8 activations
# measured 0.89x of FP32 instead of 1.33x); ARM runs them too. Per-channel weights and 7-bit
# weights (reduce_range, which keeps non-VNNI x86 from saturating) cost no measurable speed here.
# Relu is listed so the quantizer folds it into the Conv before it; Add and Resize so ONNX
# Runtime keeps a quantized stretch in uint8 instead of dequantizing around them.
CPU_SETTINGS = Int8Settings(
    op_types=("Conv", "Relu", "Add", "Resize"), activation_type="QUInt8", weight_type="QInt8",
    per_channel=True, reduce_range=True,
)
TENSORRT_SETTINGS = Int8Settings(
    op_types=("Conv", "Add"), activation_type="QInt8", weight_type="QInt8", per_channel=True,
    reduce_range=False,
    # TensorRT takes Q/DQ of int8 only (biases stay float; it fuses them itself), wants them on
    # a weighted op's inputs, not its output (ORT's own note on OpTypesToExcludeOutputQuantization),
    # and cannot share one Q/DQ pair between consumers.
    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                   "OpTypesToExcludeOutputQuantization": ["Conv"], "DedicatedQDQPair": True},
)
SETTINGS: dict[str, Int8Settings] = {"cpu": CPU_SETTINGS, "tensorrt": TENSORRT_SETTINGS}


@dataclass(frozen=True)
class QuantizeResult:
    path: Path
    precision: str
    size_bytes: int
    fp32_size_bytes: int
    comparison: Comparison  # the candidate vs the FP32 input model on held-out photos
    latency_ms: float  # ONNX Runtime CPU, median per frame, same threads and input size
    fp32_latency_ms: float
    threads: int = 1
    input_size: tuple[int, int] = (0, 0)  # (H, W) the latencies were measured at
    target: str | None = None  # int8 only

    @property
    def speedup(self) -> float:
        return self.fp32_latency_ms / self.latency_ms

    def report(self) -> str:
        kind = self.precision.upper() + (f" ({self.target} target)" if self.target else "")
        height, width = self.input_size
        quality = self.comparison
        return "\n".join([
            f"{self.path}: {kind}, {_mb(self.size_bytes)} (FP32 {_mb(self.fp32_size_bytes)}, "
            f"{self.size_bytes / self.fp32_size_bytes:.2f}x the size)",
            f"  quality vs FP32 on {quality.images} held-out images: PSNR mean "
            f"{quality.psnr_mean:.2f} dB, min {quality.psnr_min:.2f} dB (target >= "
            f"{TARGET_PSNR_DB[self.precision]:g} dB), SSIM {quality.ssim_mean:.4f}, max abs "
            f"error {quality.max_abs_error}",
            f"  ONNX Runtime CPU, {self.threads} threads, {size_text(height, width)}: "
            f"{self.latency_ms:.2f} ms vs FP32 {self.fp32_latency_ms:.2f} ms "
            f"({self.speedup:.2f}x {'faster' if self.speedup >= 1 else 'the speed'})",
        ])

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "precision": self.precision, "target": self.target,
            "size_bytes": self.size_bytes, "fp32_size_bytes": self.fp32_size_bytes,
            "comparison": self.comparison.as_dict(), "latency_ms": self.latency_ms,
            "fp32_latency_ms": self.fp32_latency_ms, "speedup": self.speedup,
            "threads": self.threads, "input_size": size_json(*self.input_size),
        }


def _mb(size: int) -> str:
    return f"{size / 1e6:.3f} MB"


# --- FP16 -------------------------------------------------------------------------------------


def convert_fp16(source: Path, output: Path, *, images: Path | None = None,
                 threads: int | None = None) -> QuantizeResult:
    """FP16 weights and activations; the graph's inputs and outputs stay as the contract says."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    contract, model = _read_source(source)
    check_writable(output)
    held_out = load_images(images, _static_size(contract), role="held-out")
    fp16 = convert_float_to_float16(model, keep_io_types=True)
    _sort_topologically(fp16.graph)
    return _evaluate_and_write(source, output, fp16, contract, "fp16", held_out, threads)


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Move each node after its inputs' producers, keeping the order otherwise. The converter
    appends the Casts it puts after float graph inputs (--float-io models) at the very end."""
    ready = {value.name for value in [*graph.input, *graph.initializer]} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        deferred = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                deferred.append(node)
        if len(deferred) == len(pending):
            raise StylecastError(f"the fp16 graph has a cycle or a missing input at node "
                                 f"{deferred[0].name!r}")
        pending = deferred
    graph.ClearField("node")
    graph.node.extend(ordered)


# --- INT8 -------------------------------------------------------------------------------------


def quantize_int8(source: Path, output: Path, calib: Path, *, target: Target = "cpu",
                  keep_fp32: Sequence[str] | None = None, images: Path | None = None,
                  calib_size: tuple[int, int] | None = None,
                  threads: int | None = None) -> QuantizeResult:
    """INT8 Q/DQ by static calibration on the images in `calib`.

    `keep_fp32` selects nodes to leave in FP32: "first" / "last" (convolution), "high-res"
    (everything above the network's lowest resolution), exact node names or fnmatch patterns
    such as "*/up.1/*"; None takes the target's default (default_keep_fp32). Dynamic
    models are calibrated on `calib_size` (H, W) center crops, by default DEFAULT_CALIB_SIZE.
    """
    if target not in SETTINGS:
        raise InputError(f"--target {target!r}: choose from {', '.join(TARGETS)}")
    if calib is None:
        raise InputError("--precision int8 needs --calib DIR, a folder of calibration images")
    contract, model = _read_source(source)
    check_writable(output)
    size = _calibration_size(contract, calib_size)
    frames = load_images(calib, size, limit=CALIB_IMAGES, role="calibration")
    held_out = load_images(images, _static_size(contract), role="held-out")
    keep = default_keep_fp32(model, target) if keep_fp32 is None else tuple(keep_fp32)
    quantized = _quantize_static(model, contract, frames, SETTINGS[target], keep)
    return _evaluate_and_write(source, output, quantized, contract, "int8", held_out, threads,
                               target=target)


def default_keep_fp32(model: onnx.ModelProto, target: Target) -> tuple[str, ...]:
    """The layers a target keeps in FP32 unless told: by the generator's tail (DepthToSpace)."""
    subpixel = _has_op(model, frozenset({"DepthToSpace"}))
    return (SUBPIXEL_KEEP_FP32 if subpixel else DEFAULT_KEEP_FP32)[target]


def _has_op(model: onnx.ModelProto, op_types: frozenset[str]) -> bool:
    return any(node.op_type in op_types for node in model.graph.node)


def _quantize_static(model: onnx.ModelProto, contract: Contract, frames: list[np.ndarray],
                     settings: Int8Settings, keep_fp32: Sequence[str]) -> onnx.ModelProto:
    """Pre-process and quantize in a private temporary folder; returns the Q/DQ model."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="stylecast-quantize-") as folder:
        fp32_path, prepared_path = Path(folder, "fp32.onnx"), Path(folder, "prepared.onnx")
        quantized_path = Path(folder, "int8.onnx")
        onnx.save(model, fp32_path)
        # Symbolic shape inference gives the quantizer every tensor's shape, and quantize_static
        # asks for it; the basic graph optimizations find nothing more in an onnxslim graph.
        # It cannot follow DepthToSpace on dynamic sizes (the subpixel tail), and a failed try
        # leaves its temporary files in the working directory: ONNX's own shape inference
        # handles those graphs, and gives the quantizer what it needs.
        quant_pre_process(fp32_path, prepared_path,
                          skip_symbolic_shape=_has_op(model, SYMBOLIC_SHAPE_GAPS))
        prepared = onnx.load(prepared_path)
        kept = resolve_nodes(prepared, keep_fp32, contract, frames[0].shape[:2])
        quantize_static(
            prepared_path, quantized_path, CalibrationReader(frames, contract),
            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(settings.op_types),
            nodes_to_quantize=[name for name in generator_nodes(prepared) if name not in kept],
            nodes_to_exclude=sorted(kept), per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            activation_type=QuantType[settings.activation_type],
            weight_type=QuantType[settings.weight_type],
            extra_options=dict(settings.extra_options),
        )
        quantized = onnx.load(quantized_path)
    _restore_io(quantized, model)
    return quantized


class CalibrationReader(CalibrationDataReader):
    """Feeds calibration frames to quantize_static as the contract's input tensor."""

    def __init__(self, frames: Sequence[np.ndarray], contract: Contract) -> None:
        self._spec = contract.input
        self._frames: Iterator[np.ndarray] = iter(
            tqdm(frames, desc="calibrating", unit="img", leave=False))

    def get_next(self) -> dict[str, np.ndarray] | None:
        frame = next(self._frames, None)
        return None if frame is None else {self._spec.name: to_model_input(frame, self._spec)}


def _restore_io(model: onnx.ModelProto, original: onnx.ModelProto) -> None:
    """Give the graph back its original input/output declarations: symbolic shape inference
    renames a dynamic model's output dims ('height' -> 'floor(2.0*floor(...)) + 4')."""
    for declared, before in ((model.graph.input, original.graph.input),
                             (model.graph.output, original.graph.output)):
        by_name = {value.name: value for value in before}
        for value in declared:
            if value.name in by_name:
                value.CopyFrom(by_name[value.name])


# --- which nodes ------------------------------------------------------------------------------


def generator_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes between the first and the last convolution (both included).

    A node is inside when a Conv feeds it and it feeds a Conv (or is one). What lies outside is
    the pixel pre/post-processing (Transpose, Cast, Div, Sub / Tanh, Add, Mul, Clip, Cast), which
    must stay float: quantizing it would round every output pixel once more.
    """
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [node for node in nodes if node.op_type == "Conv"]
    below = _reachable(convs, lambda n: [c for out in n.output for c in consumers.get(out, [])])
    above = _reachable(convs, lambda n: [producer[i] for i in n.input if i in producer])
    return [node.name for node in nodes if id(node) in below and id(node) in above]


def _reachable(start: Iterable[onnx.NodeProto],
               step: Callable[[onnx.NodeProto], list[onnx.NodeProto]]) -> set[int]:
    seen: set[int] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(step(node))
    return seen


def resolve_nodes(model: onnx.ModelProto, selectors: Sequence[str], contract: Contract,
                  size: tuple[int, int]) -> set[str]:
    """Node names for the keep_fp32 selectors, at input size `size` (H, W).

    A name or pattern that matches nothing is an InputError, so a typo cannot silently quantize
    a layer that was meant to stay FP32.
    """
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    chosen: set[str] = set()
    for selector in selectors:
        if selector == FIRST:
            chosen.update(convs[:1])
        elif selector == LAST:
            chosen.update(convs[-1:])
        elif selector == HIGH_RES:
            low = low_resolution_nodes(model, contract, size)
            chosen.update(node.name for node in model.graph.node if node.name not in low)
        else:
            matched = [node.name for node in model.graph.node if node.name == selector
                       or fnmatch.fnmatchcase(node.name, selector)]
            if not matched:
                raise InputError(
                    f"--keep-fp32 {selector!r}: matches no node of the model (give "
                    f"'{FIRST}', '{LAST}', '{HIGH_RES}', a node name or a pattern like '*/head/*')")
            chosen.update(matched)
    return chosen


def low_resolution_nodes(model: onnx.ModelProto, contract: Contract,
                         size: tuple[int, int]) -> set[str]:
    """Nodes whose every NCHW activation, in and out, is at the graph's lowest resolution."""
    sizes = _spatial_sizes(model, contract, size)
    if not sizes:
        return set()
    lowest = min(sizes.values(), key=lambda hw: hw[0] * hw[1])
    low = set()
    for node in model.graph.node:
        seen = [sizes[name] for name in [*node.input, *node.output] if name in sizes]
        if seen and all(hw == lowest for hw in seen):
            low.add(node.name)
    return low


def _spatial_sizes(model: onnx.ModelProto, contract: Contract,
                   size: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """(H, W) of every inner 4-D tensor, by ONNX shape inference with the input fixed at `size`
    (a dynamic model's dims are otherwise symbolic)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    (image,) = [value for value in probe.graph.input if value.name == contract.input.name]
    layout = LAYOUTS[contract.input.layout]
    dims = image.type.tensor_type.shape.dim
    for axis, value in zip((layout.height_axis, layout.width_axis), size, strict=True):
        dims[axis].Clear()
        dims[axis].dim_value = value
    del probe.graph.value_info[:]
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(probe)
    sizes = {}
    for value in inferred.graph.value_info:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and all(dim.HasField("dim_value") for dim in dims[2:]):
            sizes[value.name] = (dims[2].dim_value, dims[3].dim_value)
    return sizes


def _calibration_size(contract: Contract, calib_size: tuple[int, int] | None) -> tuple[int, int]:
    static = _static_size(contract)
    if static is not None:
        if calib_size is not None and tuple(calib_size) != static:
            raise InputError(f"--calib-size {size_flag_text(*calib_size)}: the model's input "
                             f"is fixed at {size_flag_text(*static)}")
        return static
    height, width = calib_size or DEFAULT_CALIB_SIZE
    if height % contract.size_multiple or width % contract.size_multiple:
        raise InputError(f"--calib-size {size_flag_text(height, width)}: height and width "
                         f"must be multiples of {contract.size_multiple}")
    return height, width


# --- shared: read, evaluate, write --------------------------------------------------------------


def _read_source(source: Path) -> tuple[Contract, onnx.ModelProto]:
    contract = read_onnx_contract(source)  # ArtifactError: missing, not ONNX, no contract
    if contract.precision != "fp32":
        raise ArtifactError(f"{source}: precision is {contract.precision}; quantize starts "
                            "from an fp32 artifact (stylecast-export onnx)")
    return contract, onnx.load(str(source))


def _static_size(contract: Contract) -> tuple[int, int] | None:
    return None if contract.is_dynamic else (contract.height, contract.width)


def _evaluate_and_write(source: Path, output: Path, model: onnx.ModelProto, contract: Contract,
                        precision: str, held_out: list[np.ndarray], threads: int | None,
                        target: str | None = None) -> QuantizeResult:
    """Stamp the contract, check the graph, compare and time it against the source, then write."""
    write_onnx_metadata(model, contract.model_copy(update={"precision": precision}))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as err:
        raise StylecastError(f"{output}: not written: the {precision} graph is invalid ({err})"
                             ) from None
    data = model.SerializeToString()
    threads = threads or os.cpu_count() or 1
    reference = OnnxEngine(source, threads=threads)
    candidate = OnnxEngine(data, threads=threads, name=str(output))
    comparison = compare(reference, candidate, held_out)
    fp32_ms, candidate_ms = median_latencies([reference, candidate], held_out[0])
    if comparison.psnr_mean < TARGET_PSNR_DB[precision]:
        log.warning("%s: PSNR to FP32 %.2f dB is below the %g dB aimed for", output,
                    comparison.psnr_mean, TARGET_PSNR_DB[precision])
    with atomic_path(output, size_hint=len(data)) as tmp:
        tmp.write_bytes(data)
    return QuantizeResult(
        path=output, precision=precision, size_bytes=len(data),
        fp32_size_bytes=Path(source).stat().st_size, comparison=comparison,
        latency_ms=candidate_ms, fp32_latency_ms=fp32_ms, threads=threads,
        input_size=held_out[0].shape[:2], target=target,
    )


def median_latencies(engines: Sequence[Callable[[np.ndarray], np.ndarray]],
                     frame: np.ndarray) -> list[float]:
    """Median milliseconds per frame of each engine.

    Each engine is timed in blocks of its own, never run-by-run interleaved: an ONNX Runtime
    thread pool keeps spinning after its run and would steal a core from the next engine's run
    (on 2 cores that doubled both latencies). Rounds alternate the order, so drifting load on a
    shared machine falls on all engines alike.
    """
    times: list[list[float]] = [[] for _ in engines]
    for round_ in range(TIMING_ROUNDS):
        order = range(len(engines)) if round_ % 2 == 0 else reversed(range(len(engines)))
        for index in order:
            for _ in range(WARMUP_RUNS):
                engines[index](frame)
            for _ in range(TIMED_RUNS):
                start = time.perf_counter()
                engines[index](frame)
                times[index].append((time.perf_counter() - start) * 1000)
    return [statistics.median(samples) for samples in times]


# --- command ----------------------------------------------------------------------------------


def keep_fp32_list(text: str) -> tuple[str, ...]:
    """argparse type for --keep-fp32: comma-separated selectors; 'none' quantizes everything."""
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    return () if items == ("none",) else items


def quantize_command(args: argparse.Namespace) -> int:
    """`stylecast-export quantize`: uses args.model, output, precision, calib, target and the
    optional keep_fp32, images, calib_size and threads."""
    images, threads = getattr(args, "images", None), getattr(args, "threads", None)
    if args.precision == "fp16":
        if args.calib is not None:
            log.warning("--calib is used only with --precision int8; ignored")
        result = convert_fp16(args.model, args.output, images=images, threads=threads)
    elif args.calib is None:
        raise InputError("--precision int8 needs --calib DIR, a folder of calibration images")
    else:
        result = quantize_int8(
            args.model, args.output, args.calib, target=args.target,
            keep_fp32=getattr(args, "keep_fp32", None), images=images,
            calib_size=getattr(args, "calib_size", None), threads=threads)
    print(result.report())
    return 0
