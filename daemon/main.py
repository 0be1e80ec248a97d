"""stylecastd: the edge daemon (camera -> engine -> ZeroMQ) and its systemd install helper."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from stylecast.core.cli_parser import CommandParser
from stylecast.core.errors import EX_OK, run_cli

PROG = "stylecastd"
LOG_LEVELS = ["debug", "info", "warning", "error"]


def build_parser() -> argparse.ArgumentParser:
    from stylecast.daemon.config import DEFAULT_CONFIG, DEFAULT_PUBLISH

    parser = CommandParser(
        prog=PROG,
        description="Capture camera frames, stylize them and publish them over ZeroMQ. "
        "Flags override the config file; with neither, the built-in test:// pattern is "
        "stylized with the bundled default style and published on " + DEFAULT_PUBLISH + ".",
    )
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help=f"TOML config (default {DEFAULT_CONFIG} if it exists)")
    parser.add_argument("--source", metavar="URI",
                        help="frame source, e.g. test://, v4l2:///dev/video0, csi://0, "
                        "picamera2://0, rtsp://..., gst://PIPELINE, file://clip.mp4?loop=1 "
                        "(default test://)")
    parser.add_argument("--model", metavar="PATH",
                        help="ONNX artifact or TensorRT engine; replaces the configured styles")
    parser.add_argument("--publish", action="append", metavar="ENDPOINT",
                        help=f"ZeroMQ PUB endpoint, repeatable (default {DEFAULT_PUBLISH})")
    parser.add_argument("--control", metavar="ENDPOINT",
                        help="ZeroMQ REP control endpoint (default ipc://<runtime dir>/control: "
                        "/run/stylecast under systemd)")
    parser.add_argument("--metrics", metavar="HOST:PORT",
                        help="serve Prometheus /metrics and /healthz over HTTP there, e.g. "
                        "127.0.0.1:9108 (no authentication); '' turns them off (default off)")
    parser.add_argument("--log-level", metavar="LEVEL", choices=LOG_LEVELS,
                        help=f"one of {', '.join(LOG_LEVELS)} (default info)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    install = commands.add_parser(
        "install", help="install and start the systemd service (unit, default config, folders)")
    uninstall = commands.add_parser(
        "uninstall", help="stop and remove the systemd service; keeps config and models")
    for sub in (install, uninstall):
        sub.add_argument("--dry-run", action="store_true", help="print what would be done")
        sub.add_argument("--root", type=Path, metavar="DIR", default=Path("/"),
                         help="work under this root (an image) instead of /: no running "
                         "systemd is touched; the service is enabled (or disabled) there by "
                         "`systemctl --root=DIR`, which only adds (or removes) a symlink in DIR")
    install.add_argument("--allow-hidden-path", action="store_true",
                         help="install even if the unit hides stylecastd or its Python "
                         "(ProtectHome=, PrivateTmp=: e.g. a venv under /home, /root or /tmp) "
                         "from the service, which then cannot start; for a unit relaxed by "
                         "your own drop-in or an image laid out differently")
    uninstall.add_argument("--purge", action="store_true",
                           help="also remove /etc/stylecast and /var/lib/stylecast")
    return parser


def configure_logging(level: str) -> None:
    # Under systemd the journal stamps every line itself (JOURNAL_STREAM is set for us).
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(stream=sys.stderr, format=stamp + "%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stylecast").setLevel(level.upper())


def run_daemon(args: argparse.Namespace) -> int:
    from stylecast.daemon.config import flag_overrides, resolve_config_path
    from stylecast.daemon.service import Daemon

    overrides = flag_overrides(source=args.source, model=args.model, publish=args.publish,
                               control=args.control, metrics=args.metrics,
                               log_level=args.log_level)
    daemon = Daemon(resolve_config_path(args.config), overrides)
    configure_logging(daemon.config.log.level)
    return daemon.run()


def run_install(args: argparse.Namespace) -> int:
    from stylecast.daemon.install import Installer

    installer = Installer(args.root, dry_run=args.dry_run,
                          allow_hidden_path=getattr(args, "allow_hidden_path", False))
    if args.command == "install":
        installer.install()
    else:
        installer.uninstall(purge=args.purge)
    return 0


def stop_before_start(signum: int, _frame: object) -> None:
    """SIGTERM/SIGINT before the daemon has its own handlers (while it imports its libraries and
    reads its config): nothing is bound or opened yet, so there is nothing to clean up: exit 0."""
    raise SystemExit(EX_OK)


def handle_early_signals() -> None:
    """Installed first thing, so a stop during start-up is a clean exit 0 rather than death by
    the signal, and a SIGHUP (default action: terminate) cannot kill a daemon that is about to
    read its config anyway. Daemon.run replaces these with its own handlers. Only the Python
    start-up before main() is left to the default action (which systemd counts as a clean stop).
    """
    signal.signal(signal.SIGTERM, stop_before_start)
    signal.signal(signal.SIGINT, stop_before_start)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def restore_default_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    handle_early_signals()
    args = build_parser().parse_args(argv)
    if args.command:
        restore_default_signals()
        return run_cli(PROG, lambda: run_install(args))
    return run_cli(PROG, lambda: run_daemon(args))


if __name__ == "__main__":
    raise SystemExit(main())
