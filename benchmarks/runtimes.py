"""Runtimes section: ONNX Runtime and OpenVINO, FP32 and INT8, nano and swift, against a floor.

Issue 19 asks whether a student built for the memory wall (`swift`: no convolution at full
resolution, a sub-pixel tail) in INT8 is fast enough on the CPUs users have, and which runtime
runs it best. So every runtime x precision x preset is timed at camera sizes in one run, with
as many threads as cores, and each row is set against two references measured in the same run:
ONNX Runtime FP32 of the same preset, and ONNX Runtime FP32 of today's nano.

A speed-up says nothing about how far a runtime is from what the machine allows, so each row
also gets a floor: the larger of the time its multiply-accumulates take at this CPU's measured
peak rate and the time its activations take to go through memory at the measured bandwidth.
Both peaks are measured here, once per run (`peak_gmacs`, `memory_bandwidth_gbs`); the cost of
each graph is counted on the ONNX file itself (`graph_cost`).

Weights: a preset with a trained model among the bundled styles (its FP32 twin beside it) is
measured from those files, the shipped INT8 included, and its INT8 gets a PSNR to FP32. The
nano reference is the first trained nano, the `stain` style that shipped until the bundled
styles moved to swift, kept in benchmarks/reference/ as it shipped (FP32 and INT8), so "x nano"
compares trained with trained. A preset with neither gets random weights initialised as
training leaves a network (benchmarks/weights.py) and INT8 from `quantize_int8` (target "cpu",
its default layer choice); its PSNR would say nothing about quantization, so there is none.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks.common import Section, Target
from benchmarks.machine import cpu_model
from benchmarks.timing import Budget, Timed, time_engine
from stylecast.core.sizes import size_json, size_text

log = logging.getLogger(__name__)

SIZES = [(480, 640), (720, 1280)]
QUICK_SIZES = [(64, 64)]
QUICK_CALIB_SIZE = (64, 64)  # quick mode calibrates INT8 on small crops (None: the default)
TARGET_SIZE = (480, 640)  # the targets are for camera frames
PRESETS = ("nano", "swift")
RUNTIMES = {"onnxruntime": "ORT", "openvino": "OpenVINO"}  # package -> the rows' label
NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
PRECISIONS = ("fp32", "int8")
REFERENCE_PRESET = "nano"  # today's student: every row's second ratio is to its ORT FP32
RANDOM = "random"
REFERENCE_FOLDER = Path(__file__).resolve().parent / "reference"
FIRST_NANO = "first-nano"  # benchmarks/reference/first-nano.{fp32,int8}.onnx
INT8_PSNR_DB = 35.0  # issue 19's quality guard for a layer in INT8
ASSUMED_INT8_GAIN = 4.0  # INT8 MACs per FP32 MAC if MatMulInteger cannot be timed here
# ops a runtime fuses into the convolution before them, and ops whose output is a view
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip"})
NOT_MATERIALISED = frozenset({"DequantizeLinear", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
                              "Identity", "Constant", "Shape"})


@dataclass(frozen=True)
class Plan:
    """How long to time: `rounds` rounds, each a block of `block` per engine, then a pause."""

    rounds: int
    block: Budget
    pause_s: float  # after each block: ONNX Runtime's pool keeps spinning after a run
    peak_n: int  # the n of the n x n x n product that measures the MAC rate
    peak_runs: int
    copy_mib: int  # the buffer that measures memory bandwidth (far beyond any cache)


FULL = Plan(rounds=5, block=Budget(warmup=2, min_runs=5, max_runs=12, seconds=1.0),
            pause_s=0.25, peak_n=512, peak_runs=30, copy_mib=256)
QUICK = Plan(rounds=1, block=Budget(warmup=1, min_runs=2, max_runs=3, seconds=0.1),
             pause_s=0.05, peak_n=256, peak_runs=5, copy_mib=64)


@dataclass(frozen=True)
class Model:
    preset: str
    weights: str  # the bundled style it is, or RANDOM
    files: dict[str, Path]  # precision -> ONNX artifact

    @property
    def trained(self) -> bool:
        return self.weights != RANDOM


@dataclass(frozen=True)
class Case:
    preset: str
    runtime: str
    precision: str


@dataclass(frozen=True)
class Cost:
    """What one frame asks of the machine, counted on the graph at one size."""

    fp32_macs: int
    int8_macs: int
    bytes_moved: int  # activations written and read

    @property
    def gmacs(self) -> float:
        return (self.fp32_macs + self.int8_macs) / 1e9


@dataclass(frozen=True)
class Peaks:
    """This machine's measured limits, with `threads` threads."""

    fp32_gmacs: float  # GMAC/s
    int8_gmacs: float
    int8_measured: bool  # False: int8_gmacs is ASSUMED_INT8_GAIN x fp32_gmacs
    bandwidth_gbs: float  # GB/s

    def floor_ms(self, cost: Cost) -> tuple[float, float]:
        """(compute, memory) milliseconds one frame cannot go below."""
        compute = cost.fp32_macs / self.fp32_gmacs / 1e6 + cost.int8_macs / self.int8_gmacs / 1e6
        return compute, cost.bytes_moved / self.bandwidth_gbs / 1e6


def run(quick: bool, threads: int | None = None) -> Section:
    threads = threads or os.cpu_count() or 1
    plan = QUICK if quick else FULL
    sizes = QUICK_SIZES if quick else SIZES
    runtimes = _runtimes()
    section = Section(
        name="runtimes",
        title=f"Runtimes: {' and '.join(NAMES[r] for r in runtimes)} on the CPU, "
              f"{threads} threads",
        columns={"preset": "preset", "weights": "weights", "runtime": "runtime",
                 "precision": "prec", "size": "WxH", "gmacs": "GMAC", "ms": "ms/frame",
                 "fps": "fps", "x_fp32": "x ORT FP32", "x_nano": "x nano ORT FP32",
                 "floor_ms": "floor ms", "bound": "bound", "x_floor": "x floor",
                 "psnr_db": "PSNR dB"})
    peaks = measure_peaks(threads, plan)
    with tempfile.TemporaryDirectory(prefix="stylecast-runtimes-") as folder:
        models = list(_models(Path(folder), quick, threads))
        engines = _open_engines(models, runtimes, threads)
        try:
            for size in sizes:
                section.rows += _measure(models, engines, size, plan, peaks)
        finally:
            for engine in engines.values():
                getattr(engine, "close", lambda: None)()
    section.targets += _targets(section.rows, sizes)
    section.notes += _notes(models, runtimes, threads, plan, peaks)
    return section


def _runtimes() -> tuple[str, ...]:
    from stylecast.daemon.engines.openvino_engine import openvino_available

    return tuple(RUNTIMES) if openvino_available() else ("onnxruntime",)


# --- this machine's limits --------------------------------------------------------------------


def measure_peaks(threads: int, plan: Plan) -> Peaks:
    fp32 = peak_gmacs(threads, integer=False, n=plan.peak_n, runs=plan.peak_runs)
    try:
        int8, measured = peak_gmacs(threads, integer=True, n=plan.peak_n, runs=plan.peak_runs), True
    except Exception as err:  # an onnxruntime without MatMulInteger for these types
        log.warning("int8 peak not measured (%s): assuming %gx FP32", err, ASSUMED_INT8_GAIN)
        int8, measured = ASSUMED_INT8_GAIN * fp32, False
    time.sleep(plan.pause_s)  # let the matrix product's thread pool stop spinning
    return Peaks(fp32, int8, measured, memory_bandwidth_gbs(threads, plan.copy_mib))


def peak_gmacs(threads: int, *, integer: bool, n: int, runs: int) -> float:
    """This CPU's best multiply-accumulate rate, GMAC/s: an n x n x n matrix product in ONNX
    Runtime with `threads` intra-op threads, best of `runs` after warm-up.

    FP32 times MatMul; INT8 times MatMulInteger (uint8 x int8 -> int32, the kernels behind ONNX
    Runtime's quantized convolutions; VNNI where the CPU has it). The operands stay in cache, so
    this is the arithmetic peak a convolution could approach: the best rate, not a typical one,
    because a floor must be a time nothing goes below."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if integer:
        a = rng.integers(0, 256, (n, n), dtype=np.uint8)
        b = rng.integers(-64, 64, (n, n), dtype=np.int8)
        op, a_type, y_type = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
    else:
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        op, a_type, y_type = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"])], "peak",
        [helper.make_tensor_value_info("a", a_type, [n, n])],
        [helper.make_tensor_value_info("y", y_type, [n, n])], [numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    best = _best_seconds(lambda: session.run(None, {"a": a}), runs)
    return n ** 3 / best / 1e9


def memory_bandwidth_gbs(threads: int, mib: int, runs: int = 5) -> float:
    """This machine's best memory bandwidth, GB/s: a `mib` MiB numpy copy (far beyond any
    cache), split over 1 thread and over `threads` threads, counted as the bytes read plus the
    bytes written, best of `runs` each. On a shared machine one thread can beat two, so the
    best of both is taken: a floor must be a time nothing goes below."""
    source = np.ones(mib * 2**20, dtype=np.uint8)
    target = np.empty_like(source)
    best = float("inf")
    for count in sorted({1, threads}):
        chunks = list(zip(np.array_split(target, count), np.array_split(source, count),
                          strict=True))
        with ThreadPoolExecutor(count) as pool:  # numpy lets go of the GIL while it copies
            best = min(best, _best_seconds(
                lambda p=pool, c=chunks: list(p.map(lambda pair: np.copyto(*pair), c)), runs))
    return 2 * source.nbytes / best / 1e9


def _best_seconds(work: Callable[[], object], runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        work()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


# --- what a graph costs -----------------------------------------------------------------------


def graph_cost(path: Path, size: tuple[int, int]) -> Cost:
    """MACs and activation bytes of one frame of `size` (H, W) through the ONNX file at `path`.

    Shapes come from ONNX shape inference with the input fixed to the frame's size. MACs: every
    Conv's output elements x its kernel's size per output (in channels per group x kh x kw); a
    Conv counts as INT8 when its input comes from a DequantizeLinear (a quantized stretch of a
    Q/DQ graph). Bytes: every tensor the runtime materialises, written once and read once, at its
    own element size (4 bytes FP32, 1 byte for a QuantizeLinear's uint8 output), plus the input
    frame read once. Not materialised, so not counted: a Conv's output going only into a Relu
    or Clip (fused), a float tensor going only into QuantizeLinear (the quantized stretch keeps
    it in uint8), DequantizeLinear outputs (the consumer reads the uint8 tensor), views
    (Reshape, Squeeze, ...) and constants. Weights are not counted: they are small and stay in
    cache."""
    graph = _shaped(path, size).graph
    shapes = _tensor_shapes(graph)
    producers = {name: node for node in graph.node for name in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    fp32_macs = int8_macs = 0
    for node in graph.node:
        if node.op_type == "Conv":
            macs = _conv_macs(shapes[node.output[0]], shapes[node.input[1]])
            producer = producers.get(node.input[0])
            if producer is not None and producer.op_type == "DequantizeLinear":
                int8_macs += macs
            else:
                fp32_macs += macs
    weights = {tensor.name for tensor in graph.initializer}
    moved = sum(_nbytes(shapes[value.name]) for value in graph.input if value.name not in weights)
    for node in graph.node:
        for name in node.output:
            if name and _materialised(node, consumers[name]):
                moved += 2 * _nbytes(shapes[name])
    return Cost(fp32_macs, int8_macs, moved)


def _shaped(path: Path, size: tuple[int, int]):
    """The model with its (H, W, 3) input fixed to `size` and every tensor's shape inferred.
    Quantized files carry value_info from before quantization with symbolic sizes: dropped."""
    import onnx

    model = onnx.load(path)
    del model.graph.value_info[:]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    fixed = {"height": size[0], "width": size[1]}
    for dim in dims:
        if dim.HasField("dim_param"):  # dynamic H and W, as the exporter names them
            if dim.dim_param not in fixed:
                raise ValueError(f"{path}: input dimension {dim.dim_param!r} is not H or W")
            dim.dim_value = fixed[dim.dim_param]
    return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)


def _tensor_shapes(graph) -> dict[str, tuple[tuple[int, ...], int]]:
    """name -> (dims, bytes per element) of every inferred tensor."""
    from onnx import helper

    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        dims = tuple(dim.dim_value for dim in tensor.shape.dim)
        if any(dim <= 0 for dim in dims):
            raise ValueError(f"{value.name}: shape {dims} unknown after shape inference")
        shapes[value.name] = (dims, helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize)
    for tensor in graph.initializer:
        shapes[tensor.name] = (tuple(tensor.dims), 0)  # weights: shape only, not counted
    return shapes


def _conv_macs(output: tuple[tuple[int, ...], int], weight: tuple[tuple[int, ...], int]) -> int:
    return int(np.prod(output[0])) * int(np.prod(weight[0][1:]))


def _nbytes(shape: tuple[tuple[int, ...], int]) -> int:
    return int(np.prod(shape[0])) * shape[1]


def _materialised(node, readers: list) -> bool:
    if node.op_type in NOT_MATERIALISED:
        return False
    if readers and all(reader.op_type == "QuantizeLinear" for reader in readers):
        return False
    fused = (node.op_type == "Conv" and len(readers) == 1
             and readers[0].op_type in FUSED_ACTIVATIONS)
    return not fused


# --- the networks -----------------------------------------------------------------------------


def trained_models() -> dict[str, Model]:
    """Per preset, the first bundled style (by name) with an FP32 twin: its files as shipped."""
    from stylecast.core.artifact import read_onnx_contract
    from stylecast.core.errors import StylecastError
    from stylecast.daemon.config import BUNDLED_MODELS

    found: dict[str, Model] = {}
    for int8 in sorted(BUNDLED_MODELS.glob("*.onnx")):
        fp32 = BUNDLED_MODELS / "fp32" / int8.name
        try:
            contracts = [read_onnx_contract(fp32), read_onnx_contract(int8)]
        except (OSError, StylecastError) as err:
            log.info("%s: not used (%s)", int8.name, err)
            continue
        if [c.precision for c in contracts] == ["fp32", "int8"] and contracts[0].preset:
            found.setdefault(contracts[0].preset,
                             Model(contracts[0].preset, int8.stem, {"fp32": fp32, "int8": int8}))
    found.setdefault(REFERENCE_PRESET, first_nano())
    return found


def first_nano() -> Model:
    """The nano every row is compared with: as it shipped, trained (benchmarks/reference/)."""
    files = {p: REFERENCE_FOLDER / f"{FIRST_NANO}.{p}.onnx" for p in PRECISIONS}
    return Model(REFERENCE_PRESET, FIRST_NANO, files)


def _models(workdir: Path, quick: bool, threads: int) -> Iterator[Model]:
    trained = trained_models()
    photos = None
    for preset in PRESETS:
        if preset in trained:
            yield trained[preset]
            continue
        if photos is None:
            from benchmarks.models import _write_photos

            photos = _write_photos(workdir)
        yield _random_model(preset, workdir, photos, QUICK_CALIB_SIZE if quick else None,
                            threads)


def _random_model(preset: str, workdir: Path, photos: dict[str, Path],
                  calib_size: tuple[int, int] | None, threads: int) -> Model:
    from benchmarks.models import export_network
    from benchmarks.weights import realistic
    from stylecast.export.quantize import quantize_int8
    from stylecast.training.presets import build_generator

    fp32, _, _ = export_network(preset, realistic(build_generator(preset)), workdir)
    int8 = workdir / f"{preset}.int8.onnx"
    quantize_int8(fp32, int8, photos["calib"], images=photos["held_out"], target="cpu",
                  calib_size=calib_size, threads=threads)
    return Model(preset, RANDOM, {"fp32": fp32, "int8": int8})


def _open_engines(models: list[Model], runtimes: tuple[str, ...], threads: int) -> dict:
    from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
    from stylecast.daemon.engines.openvino_engine import OpenVinoEngine

    opener = {"onnxruntime": OnnxEngine, "openvino": OpenVinoEngine}
    return {Case(model.preset, runtime, precision): opener[runtime](path, threads=threads)
            for model in models for runtime in runtimes
            for precision, path in model.files.items()}


# --- measuring --------------------------------------------------------------------------------


def time_blocks(engines: dict[Case, Callable], frames: list[np.ndarray],
                plan: Plan) -> dict[Case, Timed]:
    """Every engine timed in blocks of its own (time_engine: warm-up runs, then timed runs),
    each block followed by a pause: ONNX Runtime's thread pool keeps spinning after a run and
    taxes whichever engine runs next. Rounds alternate the order, so drifting load on a shared
    machine falls on all engines alike; the median is over every block's runs."""
    cases = list(engines)
    ms: dict[Case, list[float]] = {case: [] for case in cases}
    outputs: dict[Case, list[np.ndarray]] = {}
    for round_ in range(plan.rounds):
        for case in cases if round_ % 2 == 0 else cases[::-1]:
            timed = time_engine(engines[case], frames, plan.block)
            ms[case] += timed.ms
            outputs.setdefault(case, timed.outputs)
            time.sleep(plan.pause_s)
    return {case: Timed(ms[case], outputs[case]) for case in cases}


def _measure(models: list[Model], engines: dict[Case, Callable], size: tuple[int, int],
             plan: Plan, peaks: Peaks) -> list[dict]:
    from benchmarks.models import timing_frames

    timed = time_blocks(engines, timing_frames(size), plan)
    nano_ms = timed[Case(REFERENCE_PRESET, "onnxruntime", "fp32")].median_ms
    rows = []
    for model in models:
        own_ms = timed[Case(model.preset, "onnxruntime", "fp32")].median_ms
        costs = {p: graph_cost(path, size) for p, path in model.files.items()}
        for case in (c for c in timed if c.preset == model.preset):
            result = timed[case]
            cost = costs[case.precision]
            compute_ms, memory_ms = peaks.floor_ms(cost)
            floor_ms = max(compute_ms, memory_ms)
            quality = None
            if model.trained and case.precision != "fp32":
                reference = timed[Case(case.preset, case.runtime, "fp32")].outputs
                quality = _mean_psnr(reference, result.outputs)
            rows.append({
                "preset": case.preset, "weights": model.weights,
                "runtime": RUNTIMES[case.runtime], "precision": case.precision,
                "size": size_text(*size), **size_json(*size), "gmacs": round(cost.gmacs, 3),
                "ms": round(result.median_ms, 2), "fps": round(result.fps, 1),
                "runs": len(result.ms), "x_fp32": round(own_ms / result.median_ms, 2),
                "x_nano": round(nano_ms / result.median_ms, 2),
                "floor_ms": round(floor_ms, 3), "bound": "memory" if memory_ms > compute_ms
                else "compute", "x_floor": round(result.median_ms / floor_ms, 1),
                "compute_floor_ms": round(compute_ms, 3), "memory_floor_ms": round(memory_ms, 3),
                "mb_moved": round(cost.bytes_moved / 1e6, 1),
                "int8_gmacs": round(cost.int8_macs / 1e9, 3),
                "psnr_db": None if quality is None else round(quality, 1),
            })
        log.info("%s %s: %s", model.preset, size_text(*size),
                 ", ".join(f"{c.runtime} {c.precision} {t.median_ms:.1f} ms"
                           for c, t in timed.items() if c.preset == model.preset))
    return rows


def _mean_psnr(reference: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    from stylecast.training.metrics import psnr

    return float(np.mean([psnr(a, b) for a, b in zip(reference, outputs, strict=True)]))


def _targets(rows: list[dict], sizes) -> list[Target]:
    """Issue 19's: swift INT8 under ORT >= 1.5x its FP32 and >= 2x nano FP32; INT8 PSNR >= 35 dB
    (trained models only) - at 640x480, or the only size measured (--quick)."""
    label = size_text(*(TARGET_SIZE if TARGET_SIZE in sizes else sizes[0]))
    found = {(r["preset"], r["runtime"], r["precision"]): r for r in rows if r["size"] == label}
    targets = []
    swift = found.get(("swift", "ORT", "int8"))
    if swift:
        targets += [
            Target(f"swift INT8 (ORT) vs swift FP32 (ORT), {label}", ">= 1.5x",
                   swift["x_fp32"], swift["x_fp32"] >= 1.5),
            Target(f"swift INT8 (ORT) vs nano FP32 (ORT), {label}", ">= 2x",
                   swift["x_nano"], swift["x_nano"] >= 2.0)]
    for (preset, runtime, _), row in found.items():
        if row["psnr_db"] is not None:
            targets.append(Target(
                f"INT8 PSNR to FP32, {preset} ({row['weights']}), {runtime}, {label}",
                f">= {INT8_PSNR_DB:g} dB", row["psnr_db"], row["psnr_db"] >= INT8_PSNR_DB))
    return targets


def _notes(models: list[Model], runtimes: tuple[str, ...], threads: int, plan: Plan,
           peaks: Peaks) -> list[str]:
    versions = ", ".join(f"{NAMES[r]} {_version(r)}" for r in runtimes)
    notes = [
        f"CPU: {cpu_model()}; {threads} threads for every engine (ONNX Runtime intra-op "
        f"threads, OpenVINO INFERENCE_NUM_THREADS); {versions}.",
        "Weights: " + "; ".join(_weights_text(model) for model in models) + ".",
        f"ms/frame: median over every timed run of {plan.rounds} round(s) on three real "
        f"photos; in each round every engine runs a block of its own (warm-up, then timed "
        f"runs), then a {plan.pause_s:g} s pause (ONNX Runtime's spinning threads tax "
        f"whichever engine runs next), the order reversed every other round. x ORT FP32: ONNX "
        f"Runtime FP32 of the same preset / this row; x nano ORT FP32: ONNX Runtime FP32 of "
        f"nano / this row (above 1 is faster); all from the same run.",
        f"floor = max(compute, memory). compute = FP32 MACs / {peaks.fp32_gmacs:.0f} GMAC/s + "
        f"INT8 MACs / {peaks.int8_gmacs:.0f} GMAC/s: this CPU's peaks, "
        + ("both measured" if peaks.int8_measured else "FP32 measured") + " with "
        f"{threads} threads (ONNX Runtime MatMul"
        + (" and MatMulInteger" if peaks.int8_measured else "") + f", {plan.peak_n}^3, in "
        f"cache, best of {plan.peak_runs})"
        + ("" if peaks.int8_measured else
           f"; INT8 is ASSUMED to run {ASSUMED_INT8_GAIN:g}x FP32's MACs (not measured)")
        + "; a Conv counts as INT8 where its input is dequantized. memory = activation bytes "
        f"/ {peaks.bandwidth_gbs:.1f} GB/s (best {plan.copy_mib} MiB numpy copy, read + write, "
        f"1 or {threads} threads); bytes: every tensor the runtime materialises (ONNX shape "
        "inference at the frame size) written once and read once, 4 bytes FP32, 1 byte in a "
        "quantized stretch; fused activations, Q/DQ pairs' float sides, views and weights not "
        "counted. A lower bound no runtime reaches (caches, layout reorders, depthwise "
        "convolutions far from the GEMM peak); x floor = ms / floor ms.",
        "PSNR: INT8 output against the same runtime's FP32 output on the same photos, for "
        "trained weights only (random weights: -).",
    ]
    if "openvino" not in runtimes:
        notes.append("OpenVINO rows skipped: openvino is not installed "
                     "(pip install 'stylecast[openvino]').")
    return notes


def _weights_text(model: Model) -> str:
    if model.weights == FIRST_NANO:
        return (f"{model.preset}: the first trained nano (the 'stain' style, bundled until the "
                f"styles moved to swift), benchmarks/reference/{FIRST_NANO}.fp32.onnx and "
                ".int8.onnx as shipped (INT8 keeps full resolution in FP32)")
    if model.trained:
        return (f"{model.preset}: the bundled '{model.weights}' style, trained (FP32 "
                f"models/fp32/{model.weights}.onnx, INT8 models/{model.weights}.onnx as shipped)")
    return (f"{model.preset}: random, initialised as training leaves a network "
            "(benchmarks/weights.py), INT8 by quantize_int8 (target cpu, its default layers, "
            "calibrated on six scikit-image photos)")


def _version(runtime: str) -> str:
    try:
        return metadata.version(runtime)
    except metadata.PackageNotFoundError:
        return "?"
