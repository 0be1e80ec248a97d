"""The argparse parser of every stylecast command: a usage mistake is one line and exit 2, and a
mistyped flag is named as such, with the flag it was probably meant to be.

Plain argparse blames the wrong thing when a mistyped flag has a value: in `stylecastd --sorce
test://` the unknown `--sorce` is set aside and `test://` is then read as the subcommand
("argument COMMAND: invalid choice: 'test://'"). So whatever argparse reports, a flag that no
parser of the command knows is reported first.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from stylecast.core.errors import EX_USAGE

# argparse reads these as values, not flags (none of our parsers has a numeric flag).
NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?|-\.\d+")


class CommandParser(argparse.ArgumentParser):
    """argparse.ArgumentParser with one-line errors that name an unknown flag. Subcommand
    parsers made with add_subparsers() are CommandParsers too."""

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        known = known_flags(self)
        unknown = unknown_flags(getattr(self, "_given", []), known)
        if unknown:
            message = describe_unknown_flag(unknown[0], known, self.prog)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


def known_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of `parser` and of its subcommands, at any depth."""
    flags: set[str] = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= known_flags(sub)
    return flags


def unknown_flags(argv: Iterable[str], known: set[str]) -> list[str]:
    """The flags in `argv` that are none of `known` (nor an abbreviation of a long one)."""
    found = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or NEGATIVE_NUMBER.fullmatch(token):
            continue
        flag = token.split("=", 1)[0]
        if not _is_known(flag, known):
            found.append(flag)
    return found


def _is_known(flag: str, known: set[str]) -> bool:
    if flag.startswith("--"):
        return any(option.startswith(flag) for option in known if option.startswith("--"))
    return flag[:2] in known  # -oFILE is -o with its value attached


def describe_unknown_flag(flag: str, known: set[str], prog: str) -> str:
    close = difflib.get_close_matches(flag, sorted(known), n=1)
    if close:
        return f"unknown flag {flag} (did you mean {close[0]}?)"
    return f"unknown flag {flag} (see {prog} --help)"
