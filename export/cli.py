"""stylecast-export: turn a training checkpoint into an artifact the device can run."""

from __future__ import annotations

import argparse
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
        "onnx", help=f"checkpoint -> ONNX, verified against PyTorch (not yet: {EXPORT_ISSUE})"
    )
    onnx.add_argument("checkpoint", type=Path, metavar="CKPT")
    onnx.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx")
    shape = onnx.add_mutually_exclusive_group()
    shape.add_argument("--size", type=image_size, metavar="HxW", help="static input size")
    shape.add_argument("--dynamic", action="store_true", help="dynamic height and width")
    onnx.add_argument("--float-io", action="store_true",
                      help="float NCHW [-1,1] in/out instead of uint8 HWC RGB")

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def not_yet() -> int:
        raise NotYetAvailable(
            f"'{PROG} {args.command}' is not implemented yet; it lands with {EXPORT_ISSUE}"
        )

    return run_cli(PROG, not_yet)


if __name__ == "__main__":
    raise SystemExit(main())
