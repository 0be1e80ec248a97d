"""stylecast-ctl: talk to a running stylecastd over its control socket; make CURVE keys."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import zmq

from stylecast.core.cli_parser import CommandParser
from stylecast.core.cli_types import positive_seconds
from stylecast.core.errors import ConfigError, StylecastError, run_cli
from stylecast.stream.endpoints import default_control_endpoint, ipc_path
from stylecast.stream.security import (
    DEFAULT_KEY_NAME,
    ClientKeys,
    make_curve_client,
    write_key_pair,
)

PROG = "stylecast-ctl"
DEFAULT_TIMEOUT_S = 3.0


def request(endpoint: str, payload: dict, timeout_s: float = DEFAULT_TIMEOUT_S, *,
            context: zmq.Context | None = None, curve: ClientKeys | None = None) -> dict:
    """Send one control request and return the daemon's reply (which may say "ok": false).

    `curve`: connect as a CURVE client (a tcp control endpoint of a daemon with [security] set).
    Raises StylecastError when no daemon answers within `timeout_s` (which is also what a client
    the daemon does not let in sees) or the reply is not a JSON object, ConfigError when the
    endpoint cannot be used.
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
            if curve is not None:
                make_curve_client(sock, curve)
            sock.connect(endpoint)
        except zmq.ZMQError as err:
            raise ConfigError(f"cannot connect to control endpoint {endpoint!r}: "
                              f"{zmq.strerror(err.errno)}") from None
        sock.send(json.dumps(payload).encode())
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            hint = ", with this client's key authorized" if curve is not None else ""
            raise StylecastError(f"no reply from {endpoint} within {timeout_s:g} s "
                                 f"(is stylecastd running{hint}?)")
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
    commands.add_parser("status", help="engine, style, fps, drops")
    commands.add_parser("styles", help="list the configured styles")
    set_style = commands.add_parser("set-style", help="switch the live style")
    set_style.add_argument("name", metavar="NAME")
    commands.add_parser("pause", help="stop publishing stylized frames")
    commands.add_parser("resume", help="resume publishing")
    keygen = commands.add_parser(
        "keygen", help="write a CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret",
        description="Write a CURVE key pair in ZeroMQ's certificate format: DIR/NAME.key (the "
        "public key, 0644: give it to the other side) and DIR/NAME.key_secret (the key pair, "
        "0600: keep it). DIR is created (0700) if needed.")
    keygen.add_argument("directory", type=Path, metavar="DIR")
    keygen.add_argument("--name", default=DEFAULT_KEY_NAME,
                        help="file name without suffix (default %(default)s)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    return parser


def control_payload(args: argparse.Namespace) -> dict:
    if args.command == "set-style":
        return {"cmd": "set_style", "style": args.name}
    return {"cmd": args.command}


def keygen(args: argparse.Namespace) -> int:
    written = write_key_pair(args.directory, args.name, force=args.force)
    sys.stdout.write(f"public key file: {written.public_file}\n"
                     f"secret key file: {written.secret_file}\n"
                     f"public key: {written.public_key}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.server_key is None) != (args.client_key is None):
        parser.error("--server-key and --client-key go together")

    def run() -> int:
        if args.command == "keygen":
            return keygen(args)
        curve = None
        if args.server_key is not None:
            curve = ClientKeys.from_files(args.server_key, args.client_key)
        reply = request(args.endpoint, control_payload(args), args.timeout, curve=curve)
        if reply.get("ok") is not True:
            raise StylecastError(reply.get("error") or f"the daemon refused: {json.dumps(reply)}")
        sys.stdout.write(json.dumps(reply, indent=2) + "\n")
        return 0

    return run_cli(PROG, run)


if __name__ == "__main__":
    raise SystemExit(main())
