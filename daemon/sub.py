"""stylecast-sub: subscribe to a stylecast frame stream to view, record or measure it."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.daemon.cli_types import positive_int
from stylecast.daemon.errors import NotYetAvailable, run_cli

PROG = "stylecast-sub"
CONSUMER_ISSUE = "issue #6 (consumers)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Subscribe to a stylecastd frame stream (not yet implemented: "
        f"{CONSUMER_ISSUE}). --json prints one JSON object per line; with --count it ends with "
        'a summary line {"frames", "fps", "age_ms_p50", "age_ms_p95", "gaps"}.',
    )
    parser.add_argument("endpoint", metavar="ENDPOINT", help="e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--topic", default="stylized", choices=["stylized", "raw", "stats"])
    parser.add_argument("--count", type=positive_int, metavar="N", help="stop after N frames")
    parser.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds idle")
    parser.add_argument("--json", action="store_true", help="one JSON line per frame")
    parser.add_argument("--http", metavar="HOST:PORT", help="serve a live MJPEG page")
    parser.add_argument("--record", type=Path, metavar="PATH", help="video file or PNG folder")
    parser.add_argument("--show", action="store_true", help="open a window (needs a display)")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)

    def not_yet() -> int:
        raise NotYetAvailable(f"{PROG} is not implemented yet; it lands with {CONSUMER_ISSUE}")

    return run_cli(PROG, not_yet)


if __name__ == "__main__":
    raise SystemExit(main())
