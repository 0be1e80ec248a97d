"""stylecast-ctl: talk to a running stylecastd over its control socket; make CURVE keys."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import zmq

from stylecast.daemon.endpoints import default_control_endpoint, ipc_path
from stylecast.daemon.errors import ConfigError, NotYetAvailable, StylecastError, run_cli

PROG = "stylecast-ctl"
KEYGEN_ISSUE = "issue #6 (consumers, CURVE security)"
DEFAULT_TIMEOUT_S = 3.0


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def request(endpoint: str, payload: dict, timeout_s: float = DEFAULT_TIMEOUT_S, *,
            context: zmq.Context | None = None) -> dict:
    """Send one control request and return the daemon's reply (which may say "ok": false).

    Raises StylecastError when no daemon answers within `timeout_s` or the reply is not a JSON
    object, ConfigError when the endpoint cannot be used.
    """
    path = ipc_path(endpoint)
    if path is not None and not path.exists():
        raise StylecastError(f"no control socket at {path} (is stylecastd running?)")
    own_context = context is None
    context = zmq.Context() if context is None else context
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as err:
            raise ConfigError(f"cannot connect to control endpoint {endpoint!r}: "
                              f"{zmq.strerror(err.errno)}") from None
        sock.send(json.dumps(payload).encode())
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise StylecastError(f"no reply from {endpoint} within {timeout_s:g} s "
                                 "(is stylecastd running?)")
        return decode_reply(sock.recv(), endpoint)
    finally:
        sock.close(linger=0)
        if own_context:
            context.term()


def decode_reply(data: bytes, endpoint: str) -> dict:
    try:
        reply = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        reply = None
    if not isinstance(reply, dict):
        raise StylecastError(f"the reply from {endpoint} is not a JSON object")
    return reply


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Control a running stylecastd, or generate CURVE key pairs."
    )
    parser.add_argument("--endpoint", metavar="E", default=default_control_endpoint(),
                        help="control socket (default %(default)s)")
    parser.add_argument("--timeout", type=positive_seconds, metavar="S",
                        default=DEFAULT_TIMEOUT_S,
                        help="seconds to wait for the reply (default %(default)g)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="engine, style, fps, drops")
    commands.add_parser("styles", help="list the configured styles")
    set_style = commands.add_parser("set-style", help="switch the live style")
    set_style.add_argument("name", metavar="NAME")
    commands.add_parser("pause", help="stop publishing stylized frames")
    commands.add_parser("resume", help="resume publishing")
    keygen = commands.add_parser("keygen", help=f"write a CURVE key pair (not yet: {KEYGEN_ISSUE})")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    return parser


def control_payload(args: argparse.Namespace) -> dict:
    if args.command == "set-style":
        return {"cmd": "set_style", "style": args.name}
    return {"cmd": args.command}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.command == "keygen":
            raise NotYetAvailable(f"'{PROG} keygen' is not implemented yet; it lands with "
                                  f"{KEYGEN_ISSUE}")
        reply = request(args.endpoint, control_payload(args), args.timeout)
        if reply.get("ok") is not True:
            raise StylecastError(reply.get("error") or f"the daemon refused: {json.dumps(reply)}")
        sys.stdout.write(json.dumps(reply, indent=2) + "\n")
        return 0

    return run_cli(PROG, run)


if __name__ == "__main__":
    raise SystemExit(main())
