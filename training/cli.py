"""stylecast-train: learn a style on a desktop and write checkpoints that export can deploy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stylecast.daemon.cli_types import image_size, positive_int
from stylecast.daemon.errors import NotYetAvailable, run_cli

PROG = "stylecast-train"
TRAINING_ISSUE = "issue #3 (desktop training)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train compact style-transfer generators. RUN/last.ckpt is always the newest "
        "checkpoint of a run.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    presets = commands.add_parser("presets", help="table of generator presets: params, GMACs")
    presets.add_argument("--size", type=image_size, default=(256, 256), metavar="HxW",
                         help="input size the GMACs are computed at (default 256x256)")
    presets.add_argument("--json", action="store_true", help="one JSON object per preset")
    presets.set_defaults(run=_presets)

    fit = commands.add_parser(
        "fit", help=f"unpaired GAN training from two image folders (not yet: {TRAINING_ISSUE})"
    )
    fit.add_argument("--content", type=Path, required=True, metavar="DIR",
                     help="folder of content photos")
    fit.add_argument("--style", type=Path, required=True, metavar="DIR",
                     help="folder of style images")
    _add_run_options(fit)
    fit.add_argument("--size", type=positive_int, metavar="PX", help="training crop size")
    fit.add_argument("--batch-size", type=positive_int, metavar="N")
    fit.add_argument("--device", metavar="D", help="cuda, mps or cpu (default: best available)")
    fit.add_argument("--resume", action="store_true", help="continue from RUN/last.ckpt")
    fit.set_defaults(run=_not_yet)

    distill = commands.add_parser(
        "distill", help=f"distill a large teacher into a compact student (not yet: "
        f"{TRAINING_ISSUE})"
    )
    distill.add_argument("--teacher", type=Path, required=True, metavar="CKPT",
                         help="stylecast checkpoint or pytorch-CycleGAN-and-pix2pix state dict")
    distill.add_argument("--content", type=Path, required=True, metavar="DIR")
    _add_run_options(distill)
    distill.set_defaults(run=_not_yet)

    evaluate = commands.add_parser(
        "eval", help=f"FID/KID, SSIM/PSNR to a teacher, temporal flicker (not yet: "
        f"{TRAINING_ISSUE})"
    )
    evaluate.add_argument("checkpoint", type=Path, metavar="CKPT")
    evaluate.add_argument("--content", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--style", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_not_yet)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder")
    command.add_argument("--config", type=Path, metavar="FILE", help="TOML training preset")
    command.add_argument("--preset", metavar="P", help="generator preset (see 'presets')")
    command.add_argument("--steps", type=positive_int, metavar="N")


def _presets(args: argparse.Namespace) -> int:
    from stylecast.training.complexity import describe_presets

    height, width = args.size
    rows = describe_presets((height, width))
    if args.json:
        for row in rows:
            print(json.dumps({"preset": row.name, "params": row.params, "gmacs": row.gmacs,
                              "height": row.height, "width": row.width}))
        return 0
    print(f"{'preset':<8} {'params':>10} {f'GMAC@{height}x{width}':>14}")
    for row in rows:
        print(f"{row.name:<8} {row.params / 1e6:>9.3f}M {row.gmacs:>14.3f}")
    return 0


def _not_yet(args: argparse.Namespace) -> int:
    raise NotYetAvailable(f"'{PROG} {args.command}' is not implemented yet; it lands with "
                          f"{TRAINING_ISSUE}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(PROG, lambda: args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
