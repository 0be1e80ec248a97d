"""stylecast-export: turn a training checkpoint into an artifact the device can run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from stylecast.core.cli_parser import CommandParser
from stylecast.core.cli_types import image_size, positive_int
from stylecast.core.errors import run_cli
from stylecast.core.sizes import size_text

PROG = "stylecast-export"


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
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
                       help="static input size, height x width: 480x640 is 640 wide, 480 high "
                       "(default: dynamic)")
    shape.add_argument("--dynamic", action="store_true",
                       help="dynamic height and width, multiples of 4 (the default)")
    onnx.add_argument("--float-io", action="store_true",
                      help="float NCHW [-1,1] in/out instead of uint8 HWC RGB")
    onnx.add_argument("--images", type=Path, metavar="DIR",
                      help="photos to verify on (default: scikit-image's sample photos)")
    onnx.set_defaults(run=_onnx)

    quantize = commands.add_parser(
        "quantize", help="FP16 or INT8 (Q/DQ) ONNX, with a quality and speed report",
        description="Make an FP16 or INT8 variant of an ONNX artifact and report its quality "
        "(PSNR/SSIM to FP32 on held-out photos), size and CPU latency next to the FP32 model's.",
    )
    quantize.add_argument("model", type=Path, metavar="IN.onnx")
    quantize.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx")
    quantize.add_argument("--precision", choices=["fp16", "int8"], required=True)
    quantize.add_argument("--calib", type=Path, metavar="DIR",
                          help="calibration image folder (int8)")
    quantize.add_argument("--target", choices=["cpu", "tensorrt"], default="cpu",
                          help="cpu: fastest for ONNX Runtime; tensorrt: symmetric int8, "
                          "per-channel weights (default cpu)")
    quantize.add_argument("--keep-fp32", type=_keep_fp32_list, metavar="NODES",
                          help="comma-separated: first, last, high-res, node names or patterns "
                          "like '*/up.1/*'; 'none' = quantize all (default: high-res for cpu, "
                          "first,last for tensorrt)")
    quantize.add_argument("--calib-size", type=image_size, metavar="HxW",
                          help="calibration crops for dynamic models, height x width "
                          "(default 256x256)")
    quantize.add_argument("--images", type=Path, metavar="DIR",
                          help="held-out photos for the report (default: scikit-image's)")
    quantize.add_argument("--threads", type=positive_int, metavar="N",
                          help="ONNX Runtime threads for the latency figures (default: cores)")
    quantize.set_defaults(run=_quantize)

    verify = commands.add_parser(
        "verify", help="compare two artifacts, or an artifact and a checkpoint",
    )
    verify.add_argument("a", type=Path, metavar="A", help="ONNX artifact or checkpoint")
    verify.add_argument("b", type=Path, metavar="B", help="ONNX artifact or checkpoint")
    verify.add_argument("--images", type=Path, metavar="DIR",
                        help="photos to compare on (default: scikit-image's)")
    verify.add_argument("--json", action="store_true", help="one JSON object")
    verify.set_defaults(run=_verify)

    engine = commands.add_parser(
        "engine", help="build a TensorRT engine on the device (Jetson), with its sidecar",
    )
    engine.add_argument("model", type=Path, metavar="IN.onnx")
    engine.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.engine")
    engine.add_argument("--precision", choices=["fp16", "int8"], required=True)
    engine.add_argument("--size", type=image_size, metavar="HxW",
                        help="input size to optimize for (dynamic models), height x width")
    engine.add_argument("--max-size", type=image_size, metavar="HxW",
                        help="largest input a dynamic model's engine accepts, height x width")
    engine.add_argument("--workspace", type=positive_int, default=1024, metavar="MiB",
                        help="builder workspace pool limit (default 1024)")
    engine.add_argument("--timing-cache", type=Path, metavar="PATH",
                        help="persistent timing cache file (default: beside OUT.engine)")
    engine.add_argument("--force", action="store_true",
                        help="rebuild even if OUT.engine is up to date")
    engine.set_defaults(run=_engine)
    return parser


def _onnx(args: argparse.Namespace) -> int:
    from stylecast.export.onnx_export import export_onnx

    result = export_onnx(args.checkpoint, args.output, size=args.size, float_io=args.float_io,
                         images=args.images)
    contract = result.contract
    shape = "dynamic size" if contract.is_dynamic else size_text(contract.height, contract.width)
    print(f"{result.path}: {result.size_bytes / 1e6:.2f} MB, {shape}, style "
          f"{result.contract.style!r}, preset {result.contract.preset}; ONNX Runtime vs PyTorch: "
          f"{result.comparison.summary()}")
    return 0


def _keep_fp32_list(text: str) -> list[str]:
    from stylecast.export.quantize import keep_fp32_list

    return keep_fp32_list(text)


def _quantize(args: argparse.Namespace) -> int:
    from stylecast.export.quantize import quantize_command

    return quantize_command(args)


def _verify(args: argparse.Namespace) -> int:
    from stylecast.export.verify_command import verify_command

    return verify_command(args)


def _engine(args: argparse.Namespace) -> int:
    from stylecast.export.engine_command import engine_command

    return engine_command(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_cli(PROG, lambda: args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
