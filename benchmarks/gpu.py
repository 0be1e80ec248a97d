"""GPU section: ONNX Runtime's CUDA provider and PyTorch on CUDA, where CUDA exists.

Elsewhere the section is skipped and says why. TensorRT is not timed here: it runs on the
Jetson (`stylecast-export engine`, docs/deploy-jetson.md), where its own figures belong.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Section
from benchmarks.timing import FULL, QUICK, time_engine
from stylecast.core.sizes import size_json, size_text

SIZE = (720, 1280)
QUICK_SIZE = (256, 256)
NETWORKS = ("nano", "small", "base", "large", "johnson", "cyclegan-resnet9")
QUICK_NETWORKS = ("nano",)


def cuda_missing() -> str | None:
    """Why there is no GPU section here, or None when there is a CUDA device to time."""
    try:
        import onnxruntime
        providers = onnxruntime.get_available_providers()
    except ImportError:
        providers = []
    try:
        import torch
        torch_cuda, torch_build = torch.cuda.is_available(), torch.__version__
    except ImportError:
        torch_cuda, torch_build = False, "not installed"
    if "CUDAExecutionProvider" in providers or torch_cuda:
        return None
    return (f"no CUDA device: onnxruntime providers {providers or 'none'}, "
            f"torch {torch_build} cuda available: {torch_cuda}")


def run(quick: bool) -> Section:
    section = Section(
        name="gpu", title="GPU: ONNX Runtime CUDA provider and PyTorch CUDA",
        columns={"network": "network", "runtime": "runtime", "size": "WxH",
                 "precision": "prec", "ms": "ms/frame", "fps": "fps"})
    reason = cuda_missing()
    if reason:
        section.skipped = reason
        return section
    size = QUICK_SIZE if quick else SIZE
    names = QUICK_NETWORKS if quick else NETWORKS
    with tempfile.TemporaryDirectory(prefix="stylecast-bench-gpu-") as folder:
        for name in names:
            section.rows += _measure(name, size, Path(folder), quick)
    section.notes.append("CUDA timings include the host<->device copies of the uint8 frame "
                         "(what the daemon pays per frame); PyTorch times the bare generator "
                         "on a device tensor, synchronised.")
    return section


def _build(name: str):
    from benchmarks.reference_models import REFERENCES
    from stylecast.training.presets import build_generator

    return REFERENCES[name]() if name in REFERENCES else build_generator(name)


def _measure(name: str, size: tuple[int, int], workdir: Path, quick: bool) -> list[dict]:
    rows = []
    label = size_text(*size)
    for runtime, precision, ms in [*_onnxruntime(name, size, workdir, quick),
                                   *_pytorch(name, size, quick)]:
        rows.append({"network": name, "runtime": runtime, "size": label, **size_json(*size),
                     "precision": precision, "ms": round(ms, 2), "fps": round(1000 / ms, 1)})
    return rows


def _onnxruntime(name: str, size, workdir: Path, quick: bool):
    import onnxruntime

    from benchmarks.models import export_network, timing_frames
    from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
    from stylecast.export.quantize import convert_fp16

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return
    fp32, _, _ = export_network(name, _build(name), workdir)
    fp16 = workdir / f"{name}.fp16.onnx"
    convert_fp16(fp32, fp16)
    frames = timing_frames(size)
    for precision, path in (("fp32", fp32), ("fp16", fp16)):
        engine = OnnxEngine(path, providers=["CUDAExecutionProvider"])
        yield "onnxruntime cuda", precision, time_engine(engine, frames,
                                                         QUICK if quick else FULL).median_ms


def _pytorch(name: str, size, quick: bool):
    import torch

    if not torch.cuda.is_available():
        return
    module = _build(name).eval().cuda()
    x = torch.rand(1, 3, *size, device="cuda") * 2 - 1
    for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        model, batch = module.to(dtype), x.to(dtype)
        with torch.inference_mode():
            yield "pytorch cuda", precision, _cuda_median_ms(
                lambda m=model, b=batch: m(b), quick)


def _cuda_median_ms(step, quick: bool) -> float:
    import torch

    budget = QUICK if quick else FULL
    for _ in range(budget.warmup + 3):
        step()
    torch.cuda.synchronize()
    times = []
    deadline = time.perf_counter() + budget.seconds
    while len(times) < budget.min_runs or (time.perf_counter() < deadline
                                           and len(times) < budget.max_runs * 4):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
