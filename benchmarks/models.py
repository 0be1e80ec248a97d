"""Model section: cost, ONNX Runtime CPU latency and quantization's quality cost, per network.

Every preset and both reference networks (benchmarks/reference_models.py) are exported the way
`stylecast-export onnx` exports a checkpoint (pixel conversions inside, dynamic H and W), then
converted to FP16 and INT8 by the project's own `convert_fp16` / `quantize_int8` (calibrated on
scikit-image photos). Each precision is timed at each size on real photos with as many ONNX
Runtime threads as there are cores.

The random networks are initialised as training leaves a network (benchmarks/weights.py): fresh
PyTorch weights give all-zero biases, which the exporter shares between convolutions and which
then make ONNX Runtime run FP16 graphs slowly on a CPU, and activations that shrink to
FP16-subnormal values; a trained model has neither. Random weights say nothing about
quantization's quality cost, so PSNR to FP32 is only given for the default bundled style (a
trained nano), measured from the files the daemon runs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import Section, Target
from benchmarks.timing import FULL, QUICK, Budget, time_engine
from stylecast.core.sizes import size_json, size_text
from stylecast.daemon.config import DEFAULT_BUNDLED_STYLE

log = logging.getLogger(__name__)

SIZES = [(256, 256), (480, 640), (720, 1280)]
QUICK_SIZES = [(64, 64)]
QUICK_CALIB_SIZE = (64, 64)  # quick mode calibrates INT8 on small crops (None: the default)
PRECISIONS = ("fp32", "fp16", "int8")
PRESETS = ("swift", "nano", "small", "base", "large")
TRAINED = f"{DEFAULT_BUNDLED_STYLE} (trained)"  # the default bundled style, as shipped
QUICK_NETWORKS = ("nano", "johnson", TRAINED)
REFERENCE_SIZE = (256, 256)  # GMACs are counted here and scaled: every network is convolutional
TARGET_SIZE = (480, 640)  # the INT8 targets are for camera frames
SUBNORMAL_SIZE = (128, 128)  # a photo this size shows the activations' scale


@dataclass(frozen=True)
class Network:
    name: str
    kind: str  # "preset" | "reference" | "trained"
    params: int
    gmacs_256: float
    files: dict[str, Path]  # precision -> ONNX artifact
    subnormal: float  # largest share of FP16-subnormal activations in the FP32 graph


def run(quick: bool, threads: int | None = None) -> Section:
    threads = threads or os.cpu_count() or 1
    section = Section(
        name="model", title=f"Models: ONNX Runtime CPU, {threads} threads",
        columns={"network": "network", "params_m": "params M", "size": "WxH", "gmacs": "GMAC",
                 "precision": "prec", "ms": "ms/frame", "fps": "fps",
                 "speedup": "x FP32", "psnr_db": "PSNR dB"})
    sizes = QUICK_SIZES if quick else SIZES
    budget = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="stylecast-bench-") as folder:
        workdir = Path(folder)
        photos = _write_photos(workdir)
        networks = []
        for network in _networks(workdir, photos, quick, threads):
            section.rows += _measure(network, sizes, budget, threads)
            networks.append(network)
    section.targets += _int8_targets(section.rows, sizes)
    section.notes += [
        "GMAC: multiply-accumulates of convolutions (PyTorch FlopCounterMode) at 256x256, "
        "scaled by pixel count (exact for fully convolutional networks).",
        "ms/frame: median over timed runs on real photos after warm-up runs; each precision "
        "timed in its own block (an ONNX Runtime thread pool keeps spinning after a run).",
        "Weights: presets and references are random, initialised as training leaves a "
        "network (benchmarks/weights.py: Kaiming normal convolutions, unit norm scales, small "
        "distinct biases, residual projections at 0.1). PyTorch's fresh weights made the "
        "presets' FP16 run at half FP32's speed while the trained nano's ran at FP32's: their "
        "all-zero biases, shared between convolutions in the exported graph, make ONNX "
        "Runtime run FP16 convolutions slowly on a CPU, and their activations shrank to "
        "FP16-subnormal values. Largest share of FP16-subnormal activations in any layer, on a "
        "photo: "
        + ", ".join(f"{n.name} {n.subnormal:.1%}" for n in networks) + ".",
        "PSNR: uint8 outputs against the same network's FP32 outputs on the same photos, for "
        "the trained default style only: on random weights it says nothing about what "
        "quantization costs a style.",
        "FP16 on a CPU: ONNX Runtime's x86 build has few FP16 kernels; FP16 is for GPUs.",
    ]
    return section


# --- networks ---------------------------------------------------------------------------------


def _networks(workdir: Path, photos: dict[str, Path], quick: bool, threads: int):
    """Each network with its three artifacts, built one at a time (exports take a while)."""
    from benchmarks.reference_models import REFERENCES
    from benchmarks.weights import realistic
    from stylecast.training.presets import build_generator

    builders = {name: (lambda n=name: build_generator(n), "preset") for name in PRESETS}
    builders |= {name: (build, "reference") for name, build in REFERENCES.items()}
    for name, (build, kind) in builders.items():
        if quick and name not in QUICK_NETWORKS:
            continue
        calib_size = QUICK_CALIB_SIZE if quick else None
        yield _exported(name, kind, realistic(build()), workdir, photos, threads, calib_size)
    yield _bundled(workdir, photos, threads)


def _exported(name: str, kind: str, module, workdir: Path, photos: dict[str, Path],
              threads: int, calib_size: tuple[int, int] | None) -> Network:
    fp32, params, gmacs = export_network(name, module, workdir)
    files = _variants(fp32, workdir, photos, threads, calib_size)
    return Network(name, kind, params, gmacs, files, _subnormal(fp32))


def export_network(name: str, module, workdir: Path) -> tuple[Path, int, float]:
    """`module` exported as `stylecast-export onnx` would (uint8 pixels in and out, dynamic
    H and W, with a contract): (FP32 artifact, parameters, GMAC at 256x256)."""
    import onnx

    from stylecast.core.artifact import Contract, TensorSpec, write_onnx_metadata
    from stylecast.export.deploy_model import fold_batchnorm, weights_sha256
    from stylecast.export.onnx_export import trace_to_onnx
    from stylecast.training.complexity import count_macs, count_params
    from stylecast.training.generator import CompactGenerator

    log.info("exporting %s", name)
    if isinstance(module, CompactGenerator):
        module = fold_batchnorm(module)
    params = count_params(module)
    gmacs = count_macs(module, *REFERENCE_SIZE) / 1e9
    model = trace_to_onnx(module.eval(), None, float_io=False)
    pixels = TensorSpec(name="image", layout="HWC", dtype="uint8", color_order="RGB",
                        value_range=(0, 255))
    contract = Contract(input=pixels, output=pixels.model_copy(update={"name": "stylized"}),
                        height=None, width=None, size_multiple=4, style="random", preset=name,
                        precision="fp32", weights_sha256=weights_sha256(module))
    write_onnx_metadata(model, contract)
    fp32 = workdir / f"{name}.fp32.onnx"
    onnx.save(model, fp32)
    return fp32, params, gmacs


def _bundled(workdir: Path, photos: dict[str, Path], threads: int) -> Network:
    from stylecast.core.artifact import read_onnx_contract
    from stylecast.daemon.config import BUNDLED_MODELS
    from stylecast.training.complexity import count_macs, count_params
    from stylecast.training.presets import build_generator

    fp32 = BUNDLED_MODELS / "fp32" / f"{DEFAULT_BUNDLED_STYLE}.onnx"
    int8 = BUNDLED_MODELS / f"{DEFAULT_BUNDLED_STYLE}.onnx"
    network = build_generator(read_onnx_contract(fp32).preset)
    files = {"fp32": fp32, "fp16": _fp16(fp32, workdir / "trained.fp16.onnx", photos, threads),
             "int8": int8}
    return Network(TRAINED, "trained", count_params(network),
                   count_macs(network, *REFERENCE_SIZE) / 1e9, files, _subnormal(fp32))


def _subnormal(fp32: Path) -> float:
    from benchmarks.weights import subnormal_share

    return subnormal_share(fp32, timing_frames(SUBNORMAL_SIZE)[0])


def _variants(fp32: Path, workdir: Path, photos: dict[str, Path], threads: int,
              calib_size: tuple[int, int] | None) -> dict[str, Path]:
    from stylecast.export.quantize import quantize_int8

    int8 = workdir / fp32.name.replace(".fp32.", ".int8.")
    quantize_int8(fp32, int8, photos["calib"], images=photos["held_out"],
                  calib_size=calib_size, threads=threads)
    fp16 = _fp16(fp32, workdir / fp32.name.replace(".fp32.", ".fp16."), photos, threads)
    return {"fp32": fp32, "fp16": fp16, "int8": int8}


def _fp16(fp32: Path, output: Path, photos: dict[str, Path], threads: int) -> Path:
    from stylecast.export.quantize import convert_fp16

    convert_fp16(fp32, output, images=photos["held_out"], threads=threads)
    return output


def _write_photos(workdir: Path) -> dict[str, Path]:
    """Calibration photos, and small held-out crops for the quantizer's own quick check."""
    from PIL import Image
    from skimage import data

    calib, held_out = workdir / "calib", workdir / "held_out"
    calib.mkdir()
    held_out.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle",
                 "immunohistochemistry"):
        Image.fromarray(_rgb(getattr(data, name)())).save(calib / f"{name}.png")
    for name in ("cat", "hubble_deep_field"):
        Image.fromarray(_rgb(getattr(data, name)())[:64, :64]).save(held_out / f"{name}.png")
    return {"calib": calib, "held_out": held_out}


def _rgb(image) -> np.ndarray:
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


# --- measuring --------------------------------------------------------------------------------


def timing_frames(size: tuple[int, int]) -> list[np.ndarray]:
    """Three real photos fitted to `size` (photos other than the calibration ones)."""
    from skimage import data

    return [_fit(photo, size) for photo in (data.astronaut(), data.coffee(), data.chelsea())]


def _fit(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from stylecast.daemon.engines.frame_fit import resize

    return np.ascontiguousarray(resize(photo, size))


def _measure(network: Network, sizes, budget: Budget, threads: int) -> list[dict]:
    from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
    from stylecast.training.metrics import psnr

    engines = {p: OnnxEngine(path, threads=threads) for p, path in network.files.items()}
    rows = []
    for size in sizes:
        frames = timing_frames(size)
        timed = {p: time_engine(engine, frames, budget) for p, engine in engines.items()}
        scale = size[0] * size[1] / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1])
        for precision in PRECISIONS:
            result = timed[precision]
            quality = None if precision == "fp32" or network.kind != "trained" else float(
                np.mean([psnr(a, b) for a, b in zip(timed["fp32"].outputs, result.outputs,
                                                    strict=True)]))
            rows.append({
                "network": network.name, "kind": network.kind,
                "params_m": round(network.params / 1e6, 3),
                "size": size_text(*size), **size_json(*size),
                "gmacs": round(network.gmacs_256 * scale, 2),
                "precision": precision, "ms": round(result.median_ms, 2),
                "fps": round(result.fps, 1), "runs": len(result.ms),
                "speedup": round(timed["fp32"].median_ms / result.median_ms, 2),
                "psnr_db": None if quality is None else round(quality, 1),
                "file_mb": round(network.files[precision].stat().st_size / 1e6, 3),
            })
        log.info("%s %s: %s", network.name, size_text(*size),
                 ", ".join(f"{p} {t.median_ms:.1f} ms" for p, t in timed.items()))
    return rows


def _int8_targets(rows: list[dict], sizes) -> list[Target]:
    """Targets: INT8 >= 1.5x FP32 at PSNR >= 35 dB, FP16 >= 40 dB - for the trained model."""
    size = TARGET_SIZE if TARGET_SIZE in sizes else sizes[0]
    label = size_text(*size)
    found = {r["precision"]: r for r in rows if r["network"] == TRAINED and r["size"] == label}
    targets = []
    if "int8" in found:
        int8, fp16 = found["int8"], found["fp16"]
        targets.append(Target(f"INT8 speed-up vs FP32, {TRAINED}, {label}", ">= 1.5x",
                              int8["speedup"], int8["speedup"] >= 1.5))
        targets.append(Target(f"INT8 PSNR to FP32, {TRAINED}, {label}", ">= 35 dB",
                              int8["psnr_db"], int8["psnr_db"] >= 35))
        targets.append(Target(f"FP16 PSNR to FP32, {TRAINED}, {label}", ">= 40 dB",
                              fp16["psnr_db"], fp16["psnr_db"] >= 40))
    return targets
