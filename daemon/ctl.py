"""stylecast-ctl: talk to a running stylecastd over its control socket; make CURVE keys."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.daemon.errors import NotYetAvailable, run_cli

PROG = "stylecast-ctl"
CONTROL_ISSUE = "issue #5 (the daemon)"
KEYGEN_ISSUE = "issue #6 (consumers, CURVE security)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Control a running stylecastd, or generate CURVE key pairs."
    )
    parser.add_argument("--endpoint", metavar="E", default="ipc:///run/stylecast/control",
                        help="control socket (default ipc:///run/stylecast/control)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    later = f"(not yet: {CONTROL_ISSUE})"
    commands.add_parser("status", help=f"engine, style, fps, drops {later}")
    commands.add_parser("styles", help=f"list the configured styles {later}")
    set_style = commands.add_parser("set-style", help=f"switch the live style {later}")
    set_style.add_argument("name", metavar="NAME")
    commands.add_parser("pause", help=f"stop publishing stylized frames {later}")
    commands.add_parser("resume", help=f"resume publishing {later}")
    keygen = commands.add_parser("keygen", help=f"write a CURVE key pair (not yet: {KEYGEN_ISSUE})")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    issue = KEYGEN_ISSUE if args.command == "keygen" else CONTROL_ISSUE

    def not_yet() -> int:
        raise NotYetAvailable(f"'{PROG} {args.command}' is not implemented yet; it lands with "
                              f"{issue}")

    return run_cli(PROG, not_yet)


if __name__ == "__main__":
    raise SystemExit(main())
