"""stylecast-ctl: talk to a running stylecastd over its control socket; make CURVE keys.

Every control command (docs/protocol.md) has a verb: the command's name with "-" for "_".
`status` prints a short summary for people (`--json`: the whole object), `watch` refreshes it
in place.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from stylecast.core.cli_parser import CommandParser
from stylecast.core.cli_types import fraction, positive_int, positive_seconds
from stylecast.core.errors import StylecastError, UserError, run_cli
from stylecast.daemon.status_text import summary
from stylecast.stream.control_client import DEFAULT_TIMEOUT_S, decode_reply, request
from stylecast.stream.endpoints import default_control_endpoint
from stylecast.stream.security import DEFAULT_KEY_NAME, ClientKeys, write_key_pair

__all__ = ["build_parser", "decode_reply", "main", "request"]

PROG = "stylecast-ctl"
CLEAR_SCREEN = "\x1b[H\x1b[2J"  # cursor home, erase the screen: `watch` redraws in place
KNOBS = {"strength": "how much of the style shows: 1 = all of it, 0 = the camera's picture",
         "smoothing": "running average of stylized frames against shimmer: 0 = off"}


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog=PROG, description="Control a running stylecastd, or generate CURVE key pairs."
    )
    parser.add_argument("--endpoint", metavar="E", default=default_control_endpoint(),
                        help="control socket (default %(default)s)")
    parser.add_argument("--timeout", type=positive_seconds, metavar="S",
                        default=DEFAULT_TIMEOUT_S,
                        help="seconds to wait for the reply (default %(default)g)")
    parser.add_argument("--server-key", type=Path, metavar="FILE",
                        help="the daemon's public key file (NAME.key), for a CURVE tcp control "
                        "endpoint; needs --client-key")
    parser.add_argument("--client-key", type=Path, metavar="FILE",
                        help="this client's secret key file (NAME.key_secret, mode 0600) whose "
                        "public key is in the daemon's authorized_keys folder")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_status_commands(commands)
    commands.add_parser("styles", help="list the configured styles")
    set_style = commands.add_parser("set-style", help="switch the live style")
    set_style.add_argument("name", metavar="NAME")
    for knob, meaning in KNOBS.items():
        setter = commands.add_parser(f"set-{knob}", help=f"set the {knob} (0 to 1): {meaning}")
        setter.add_argument("value", type=fraction, metavar="VALUE", help="0 to 1")
        setter.add_argument("--style", metavar="NAME",
                            help="the style to set it for (default: the active one)")
    commands.add_parser("pause", help="stop publishing stylized frames")
    commands.add_parser("resume", help="resume publishing")
    _add_keygen(commands)
    return parser


def _add_status_commands(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="state, style, fps, latency, frame age, drops")
    status.add_argument("--json", action="store_true", help="the daemon's whole status object")
    watch = commands.add_parser("watch", help="the status summary, refreshed in place (Ctrl-C "
                                "ends it)")
    watch.add_argument("--interval", type=positive_seconds, metavar="S", default=1.0,
                       help="seconds between refreshes (default %(default)g)")
    watch.add_argument("--count", type=positive_int, metavar="N", help="stop after N refreshes")


def _add_keygen(commands: argparse._SubParsersAction) -> None:
    keygen = commands.add_parser(
        "keygen", help="write a CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret",
        description="Write a CURVE key pair in ZeroMQ's certificate format: DIR/NAME.key (the "
        "public key, 0644: give it to the other side) and DIR/NAME.key_secret (the key pair, "
        "0600: keep it). DIR is created (0700) if needed.")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    keygen.add_argument("--name", default=DEFAULT_KEY_NAME,
                        help="file name without suffix (default %(default)s)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")


def control_payload(args: argparse.Namespace) -> dict:
    """The control request a verb stands for."""
    if args.command == "set-style":
        return {"cmd": "set_style", "style": args.name}
    if args.command in ("set-strength", "set-smoothing"):
        payload = {"cmd": args.command.replace("-", "_"), "value": args.value}
        return payload if args.style is None else {**payload, "style": args.style}
    if args.command == "watch":
        return {"cmd": "status"}
    return {"cmd": args.command}


def keygen(args: argparse.Namespace) -> int:
    written = write_key_pair(args.directory, args.name, force=args.force)
    sys.stdout.write(f"public key file: {written.public_file}\n"
                     f"secret key file: {written.secret_file}\n"
                     f"public key: {written.public_key}\n")
    return 0


def watch(args: argparse.Namespace, ask: Callable[[], dict]) -> int:
    """Print the status summary every --interval seconds, over the last one on a terminal. A
    daemon that does not answer (restarting, say) is shown as such and asked again."""
    in_place = sys.stdout.isatty()
    shown = 0
    try:
        while args.count is None or shown < args.count:
            if shown:
                time.sleep(args.interval)
            try:
                text = summary(ask())
            except UserError:
                raise
            except StylecastError as err:
                text = f"no status: {err}"
            head = CLEAR_SCREEN if in_place else "\n" if shown else ""
            sys.stdout.write(f"{head}{args.endpoint}  {time.strftime('%H:%M:%S')}\n{text}\n")
            sys.stdout.flush()
            shown += 1
    except KeyboardInterrupt:
        pass  # the way to end it
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.server_key is None) != (args.client_key is None):
        parser.error("--server-key and --client-key go together")
    return run_cli(PROG, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.command == "keygen":
        return keygen(args)
    curve = None
    if args.server_key is not None:
        curve = ClientKeys.from_files(args.server_key, args.client_key)

    def ask() -> dict:
        reply = request(args.endpoint, control_payload(args), args.timeout, curve=curve)
        if reply.get("ok") is not True:
            raise StylecastError(reply.get("error") or f"the daemon refused: {json.dumps(reply)}")
        return reply

    if args.command == "watch":
        return watch(args, ask)
    reply = ask()
    if args.command == "status" and not args.json:
        sys.stdout.write(summary(reply) + "\n")
    else:
        sys.stdout.write(json.dumps(reply, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
