"""CommandParser: usage mistakes are one line and exit 2, and a mistyped flag is the one named."""

from __future__ import annotations

import pytest

from stylecast.core.cli_parser import CommandParser, known_flags, unknown_flags
from stylecast.core.errors import EX_USAGE


def parser() -> CommandParser:
    """Shaped like stylecastd: flags with values, and optional subcommands."""
    root = CommandParser(prog="tool")
    root.add_argument("--source", metavar="URI")
    root.add_argument("--count", type=int)
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    install = commands.add_parser("install")
    install.add_argument("--dry-run", action="store_true")
    install.add_argument("-o", "--output")
    return root


def usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(argv)
    assert caught.value.code == EX_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no usage block
    return err.strip()


@pytest.mark.parametrize(("argv", "line"), [
    (["--sorce", "test://"], "tool: error: unknown flag --sorce (did you mean --source?)"),
    (["--sorce=test://"], "tool: error: unknown flag --sorce (did you mean --source?)"),
    (["--fps", "10"], "tool: error: unknown flag --fps (see tool --help)"),
    (["--sorce", "test://", "install"], "tool: error: unknown flag --sorce (did you mean "
     "--source?)"),
    (["install", "--dryrun"], "tool: error: unknown flag --dryrun (did you mean --dry-run?)"),
    (["install", "--output", "x", "-x"], "tool: error: unknown flag -x (see tool --help)"),
])
def test_an_unknown_flag_is_named(argv, line, capsys):
    assert usage_error(argv, capsys) == line


def test_other_usage_errors_keep_argparses_words_on_one_line(capsys):
    assert usage_error(["--count", "many"], capsys) == (
        "tool: error: argument --count: invalid int value: 'many'")
    assert usage_error(["instal"], capsys).startswith(
        "tool: error: argument COMMAND: invalid choice: 'instal'")


def test_good_command_lines_still_parse():
    args = parser().parse_args(["--sou", "test://", "--count", "-3", "install", "-ox", "--dry"])
    assert (args.source, args.count, args.command, args.output, args.dry_run) == (
        "test://", -3, "install", "x", True)
    assert parser().parse_args([]).command is None


def test_known_and_unknown_flags():
    known = known_flags(parser())
    assert known >= {"-h", "--help", "--source", "--count", "--dry-run", "-o", "--output"}
    assert unknown_flags(["--sou", "-ofile", "-5", "-", "--bogus", "--", "--after"], known) == [
        "--bogus"]
