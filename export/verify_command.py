"""`stylecast-export verify A B`: do two models compute the same images?

A and B are ONNX artifacts or stylecast checkpoints, in any combination and order. Both run on
the same real photos (uint8 RGB in, uint8 RGB out) and the report gives PSNR, SSIM and the largest
pixel error of B against A, and whether both carry the same weights (contract `weights_sha256`
against the checkpoint generator's hash). The photos are cut to the static size of whichever
side has one, else to multiples of 4.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

from stylecast.core.artifact import Contract, read_onnx_metadata, sidecar_path
from stylecast.core.errors import ArtifactError, InputError
from stylecast.core.sizes import size_json, size_text
from stylecast.daemon.engines.onnxruntime_engine import OnnxEngine
from stylecast.export.deploy_model import Uint8ImageModel, weights_sha256
from stylecast.export.verification import Runner, compare, load_images, torch_runner
from stylecast.training.checkpoint import load_generator

Size = tuple[int, int]


def runner_for(path: Path, size: Size | None) -> tuple[Runner, dict[str, Any]]:
    """A runner over the model in `path` and a description of it (JSON-ready).

    An ONNX artifact runs in ONNX Runtime; a checkpoint's generator runs in PyTorch behind the
    same uint8 conversions export puts into the graph. `size` is the (H, W) the runner will be
    fed, if known: a static artifact of another size is refused.
    """
    path = Path(path)
    if _kind(path) == "checkpoint":
        runner, about = _checkpoint_runner(path)
    else:
        runner, about = _onnx_runner(path)
    static = _static_size(about)
    if size is not None and static is not None and static != tuple(size):
        raise InputError(f"{path}: a static {size_text(*static)} model cannot run "
                         f"{size_text(*size)} images")
    return runner, about


def verify(a: Path, b: Path, images: Path | None) -> dict[str, Any]:
    """Run A and B on the same photos (a folder, or scikit-image's when None); the JSON report."""
    run_a, about_a = runner_for(a, None)
    run_b, about_b = runner_for(b, None)
    size = _shared_size(a, about_a, b, about_b)
    comparison = compare(run_a, run_b, load_images(images, size))
    return {
        "a": about_a,
        "b": about_b,
        **comparison.as_dict(),  # images, psnr_mean, psnr_min, ssim_mean, max_abs_error
        "same_weights": about_a["weights_sha256"] == about_b["weights_sha256"],
        "size": size_json(*size) if size else None,
    }


def verify_command(args: argparse.Namespace) -> int:
    report = verify(args.a, args.b, args.images)
    if args.json:
        print(json.dumps(report, allow_nan=False))  # PSNR of identical outputs is null, not inf
    else:
        print(format_report(report))
    return 0


def format_report(report: dict[str, Any]) -> str:
    """A short side-by-side table of A and B, then the comparison in one line."""
    a, b = report["a"], report["b"]
    rows = [("", "A", "B"), ("path", a["path"], b["path"]), ("kind", a["kind"], b["kind"])]
    for key in ("style", "preset", "precision"):
        rows.append((key, a.get(key) or "-", b.get(key) or "-"))
    rows.append(("size", _about_size_text(a), _about_size_text(b)))
    same = "same" if report["same_weights"] else "different"
    rows.append(("weights", a["weights_sha256"][:12], f"{b['weights_sha256'][:12]} ({same})"))
    width_a = max(len(str(row[1])) for row in rows)
    lines = [f"{key:<10}{left!s:<{width_a + 2}}{right}".rstrip() for key, left, right in rows]
    size = report["size"]
    at = size_text(size["height"], size["width"]) if size else "their own sizes (dynamic)"
    lines.append(
        f"B vs A on {report['images']} images at {at}: PSNR mean {_db(report['psnr_mean'])}, "
        f"min {_db(report['psnr_min'])}, SSIM {report['ssim_mean']:.4f}, "
        f"max abs error {report['max_abs_error']}"
    )
    return "\n".join(lines)


# --- What a file is --------------------------------------------------------------------------


def _kind(path: Path) -> str:
    """'checkpoint' for a torch.save archive, 'onnx' for anything else that exists.

    torch.save writes a zip archive; an ONNX file is a protobuf and never one. What is neither
    is refused when the ONNX reader fails on it.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if zipfile.is_zipfile(path):
        return "checkpoint"
    if sidecar_path(path).is_file():
        raise InputError(f"{path}: a TensorRT engine; verify compares ONNX artifacts and "
                         "checkpoints (compare the ONNX file it was built from)")
    return "onnx"


def _onnx_runner(path: Path) -> tuple[Runner, dict[str, Any]]:
    try:
        props = read_onnx_metadata(path)
    except ArtifactError as err:
        detail = str(err).removeprefix(f"{path}: ")
        raise InputError(f"{path}: neither a stylecast checkpoint nor an ONNX model; as ONNX: "
                         f"{detail}") from None
    Contract.from_metadata(props, source=str(path))  # one-line refusal before ORT loads it
    engine = OnnxEngine(path)
    return engine, _describe_contract(path, engine.contract)


def _checkpoint_runner(path: Path) -> tuple[Runner, dict[str, Any]]:
    generator, info = load_generator(path)
    about = {
        "path": str(path), "kind": "checkpoint", "style": info.style, "preset": info.preset,
        "mode": info.mode, "step": info.step, "height": None, "width": None,
        "weights_sha256": weights_sha256(generator),
    }
    return torch_runner(Uint8ImageModel(generator.eval())), about


def _describe_contract(path: Path, contract: Contract) -> dict[str, Any]:
    spec = contract.input
    return {
        "path": str(path), "kind": "onnx", "style": contract.style, "preset": contract.preset,
        "precision": contract.precision, "height": contract.height, "width": contract.width,
        "input": f"{spec.layout} {spec.dtype} {spec.color_order}",
        "weights_sha256": contract.weights_sha256,
        "stylecast_version": contract.stylecast_version,
    }


# --- Sizes -------------------------------------------------------------------------------------


def _shared_size(a: Path, about_a: dict[str, Any], b: Path,
                 about_b: dict[str, Any]) -> Size | None:
    size_a, size_b = _static_size(about_a), _static_size(about_b)
    if size_a and size_b and size_a != size_b:
        raise InputError(f"{a} is static {size_text(*size_a)} but {b} is static "
                         f"{size_text(*size_b)}; compare models of the same size, or one with "
                         "dynamic height and width")
    return size_a or size_b


def _static_size(about: dict[str, Any]) -> Size | None:
    if about["height"] is None or about["width"] is None:
        return None
    return about["height"], about["width"]


def _about_size_text(about: dict[str, Any]) -> str:
    size = _static_size(about)
    return size_text(*size) if size else "dynamic"


def _db(value: float | None) -> str:
    return "identical" if value is None else f"{value:.2f} dB"
