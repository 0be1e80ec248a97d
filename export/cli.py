"""stylecast-export: turn a training checkpoint into an artifact the device can run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stylecast.daemon.cli_types import image_size
from stylecast.daemon.errors import NotYetAvailable, run_cli

PROG = "stylecast-export"
EXPORT_ISSUE = "issue #4 (export)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export checkpoints to ONNX carrying the stylecast artifact contract, "
        "quantize them, compare them, and build TensorRT engines.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    onnx = commands.add_parser(
        "onnx", help="checkpoint -> ONNX artifact, verified against PyTorch on real photos",
        description="Export a training checkpoint to ONNX (opset 17) with the artifact contract "
        "in its metadata. The file is written only if ONNX Runtime reproduces PyTorch's outputs.",
    )
    onnx.add_argument("checkpoint", type=Path, metavar="CKPT")
    onnx.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx")
    shape = onnx.add_mutually_exclusive_group()
    shape.add_argument("--size", type=image_size, metavar="HxW",
                       help="static input size, e.g. 480x640 (default: dynamic)")
    shape.add_argument("--dynamic", action="store_true",
                       help="dynamic height and width, multiples of 4 (the default)")
    onnx.add_argument("--float-io", action="store_true",
                      help="float NCHW [-1,1] in/out instead of uint8 HWC RGB")
    onnx.add_argument("--images", type=Path, metavar="DIR",
                      help="photos to verify on (default: scikit-image's sample photos)")
    onnx.set_defaults(run=_onnx)

    quantize = commands.add_parser(
        "quantize", help=f"FP16 or INT8 (Q/DQ) ONNX with a quality report (not yet: "
        f"{EXPORT_ISSUE})"
    )
    quantize.add_argument("model", type=Path, metavar="IN.onnx")
    quantize.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx")
    quantize.add_argument("--precision", choices=["fp16", "int8"], required=True)
    quantize.add_argument("--calib", type=Path, metavar="DIR", help="calibration image folder")
    quantize.add_argument("--target", choices=["cpu", "tensorrt"], default="cpu")

    verify = commands.add_parser(
        "verify", help=f"compare two artifacts, or an artifact and a checkpoint (not yet: "
        f"{EXPORT_ISSUE})"
    )
    verify.add_argument("a", type=Path, metavar="A")
    verify.add_argument("b", type=Path, metavar="B")
    verify.add_argument("--images", type=Path, required=True, metavar="DIR")
    verify.add_argument("--json", action="store_true")

    engine = commands.add_parser(
        "engine", help=f"build a cached TensorRT engine on the device (not yet: {EXPORT_ISSUE})"
    )
    engine.add_argument("model", type=Path, metavar="IN.onnx")
    engine.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.engine")
    engine.add_argument("--precision", choices=["fp16", "int8"], required=True)
    return parser


def _onnx(args: argparse.Namespace) -> int:
    from stylecast.export.onnx_export import export_onnx

    result = export_onnx(args.checkpoint, args.output, size=args.size, float_io=args.float_io,
                         images=args.images)
    shape = "dynamic HxW" if result.contract.is_dynamic else (
        f"{result.contract.height}x{result.contract.width}")
    print(f"{result.path}: {result.size_bytes / 1e6:.2f} MB, {shape}, style "
          f"{result.contract.style!r}, preset {result.contract.preset}; ONNX Runtime vs PyTorch: "
          f"{result.comparison.summary()}")
    return 0


def _not_yet(args: argparse.Namespace) -> int:
    raise NotYetAvailable(
        f"'{PROG} {args.command}' is not implemented yet; it lands with {EXPORT_ISSUE}"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_cli(PROG, lambda: getattr(args, "run", _not_yet)(args))


if __name__ == "__main__":
    raise SystemExit(main())
