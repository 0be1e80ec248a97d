"""The README's two set-up commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    run_main, run_tests = commands
    assert "\n" not in run_main and "\n" not in run_tests
    assert run_main.endswith("stylecastd") and "torch" not in run_main
    assert "pip install torch==2.13.0" in run_tests and run_tests.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def venv_of(command: str) -> str:
    return re.match(r"python3 -m venv (\S+) && ", command)[1]


def test_the_test_command_has_a_venv_of_its_own_that_ruff_leaves_alone():
    import fnmatch
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    run_main, run_tests = readme_commands()
    dev_venv = venv_of(run_tests)
    assert dev_venv != venv_of(run_main)  # the tests never reinstall the quickstart's venv
    assert run_tests.count(f"{dev_venv}/bin/") == 3  # pip, ruff and pytest all from it
    assert f"rm -rf {dev_venv}\n" in (ROOT / ".ci" / "run").read_text()
    ruff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert any(fnmatch.fnmatch(dev_venv, pattern) for pattern in ruff["extend-exclude"])


def test_links_point_at_files_inside_the_repository():
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{document.name}: {target} is outside the repo"
            assert path.exists(), f"{document.name}: {target} does not exist"


def command_lines() -> list[list[str]]:
    """Every line of the README's code blocks that runs one of our commands, as words (a
    continuation line that starts with `[` joined to its command)."""
    lines: list[str] = []
    for block in re.findall(r"```(?:sh)?\n(.+?)```", (ROOT / "README.md").read_text(), re.S):
        for line in block.splitlines():
            if line.startswith(" ") and line.strip().startswith("[") and lines:
                lines[-1] += " " + line.strip()
            else:
                lines += [part for part in line.split(" && ")]
    words = []
    for line in lines:
        tokens = line.split("#", 1)[0].split()
        while tokens and (tokens[0] == "sudo" or "=" in tokens[0]):
            tokens = tokens[1:]
        if tokens and tokens[0].rsplit("/", 1)[-1] in PARSERS:
            words.append([tokens[0].rsplit("/", 1)[-1], *tokens[1:]])
    return words


PARSERS = {
    "stylecastd": "stylecast.daemon.main",
    "stylecast-sub": "stylecast.stream.sub",
    "stylecast-ctl": "stylecast.daemon.ctl",
    "stylecast-train": "stylecast.training.cli",
    "stylecast-export": "stylecast.export.cli",
}


def test_every_readme_command_uses_real_subcommands_flags_and_styles():
    import argparse
    import importlib

    bundled = {p.stem for p in (ROOT / "daemon" / "models").glob("*.onnx")}
    lines = command_lines()
    assert len(lines) > 15, lines
    for command, *words in lines:
        parser = importlib.import_module(PARSERS[command]).build_parser()
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                   None)
        known = {s for a in parser._actions for s in a.option_strings}
        positional = [w for w in words if not w.startswith(("-", "[", "|"))]
        if sub is not None and positional and positional[0] in sub.choices:
            known |= {s for a in sub.choices[positional[0]]._actions for s in a.option_strings}
            if positional[0] == "set-style":
                assert positional[1] in bundled, f"set-style {positional[1]}: not a bundled style"
        for word in words:
            flag = word.strip("[]|").split("=", 1)[0]
            if flag.startswith("--") and not set(flag) <= {"-", "."}:
                assert flag in known, f"{command} {' '.join(words)}: no flag {flag}"
