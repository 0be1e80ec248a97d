"""stylecastd: the edge daemon (camera -> engine -> ZeroMQ) and its systemd install helper."""

from __future__ import annotations

import argparse
from pathlib import Path

from stylecast.daemon.errors import NotYetAvailable, run_cli

PROG = "stylecastd"
DEFAULT_CONFIG = Path("/etc/stylecast/stylecast.toml")
DAEMON_ISSUE = "issue #5 (the daemon)"
INSTALL_ISSUE = "issue #7 (systemd service)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Capture camera frames, stylize them and publish them over ZeroMQ "
        f"(the pipeline is not yet implemented: {DAEMON_ISSUE}).",
    )
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help=f"TOML config (default {DEFAULT_CONFIG} if it exists)")
    parser.add_argument("--source", metavar="URI",
                        help="frame source, e.g. test://, v4l2:///dev/video0, csi://0, "
                        "picamera2://0, file://clip.mp4?loop=1 (default test://)")
    parser.add_argument("--model", metavar="PATH", help="ONNX artifact or TensorRT engine")
    parser.add_argument("--publish", action="append", metavar="ENDPOINT",
                        help="ZeroMQ PUB endpoint, repeatable (default tcp://127.0.0.1:5555)")
    parser.add_argument("--control", metavar="ENDPOINT",
                        help="ZeroMQ REP control endpoint (default ipc:///run/stylecast/control)")
    parser.add_argument("--log-level", metavar="LEVEL",
                        choices=["debug", "info", "warning", "error"], default="info")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    install = commands.add_parser(
        "install", help=f"install the systemd service (not yet: {INSTALL_ISSUE})"
    )
    install.add_argument("--dry-run", action="store_true", help="print what would be done")
    install.add_argument("--root", type=Path, metavar="DIR", help="install under this root")
    commands.add_parser("uninstall", help=f"remove the systemd service (not yet: {INSTALL_ISSUE})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def not_yet() -> int:
        if args.command:
            raise NotYetAvailable(
                f"'{PROG} {args.command}' is not implemented yet; it lands with {INSTALL_ISSUE}"
            )
        raise NotYetAvailable(
            f"the capture -> stylize -> publish pipeline is not implemented yet; it lands with "
            f"{DAEMON_ISSUE}"
        )

    return run_cli(PROG, not_yet)


if __name__ == "__main__":
    raise SystemExit(main())
