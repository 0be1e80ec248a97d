"""The five console scripts: --help lists the documented command surface; errors are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stylecast.core.errors import EX_CONFIG, ConfigError, run_cli
from stylecast.daemon.main import build_parser as stylecastd_parser
from stylecast.training.complexity import describe_presets

BIN = Path(sys.executable).parent

# command -> words its --help must show (docs/architecture.md, command-line surface)
SURFACE = {
    "stylecast-train": ["presets", "fit", "distill", "eval"],
    "stylecast-export": ["onnx", "quantize", "verify", "engine"],
    "stylecastd": ["--config", "--source", "--model", "--publish", "--control", "--metrics",
                   "--log-level", "install", "uninstall"],
    "stylecast-sub": ["ENDPOINT", "--topic", "--count", "--timeout", "--json", "--http",
                      "--control", "--record", "--show"],
    "stylecast-ctl": ["--endpoint", "status", "watch", "styles", "set-style", "set-strength",
                      "set-smoothing", "pause", "resume", "keygen"],
}

SUBCOMMAND_SURFACE = {
    ("stylecast-train", "fit"): ["--content", "--style", "--out", "--config", "--preset",
                                 "--steps", "--size", "--batch-size", "--device", "--resume"],
    ("stylecast-train", "distill"): ["--teacher", "--style-image", "--content", "--out",
                                     "--preset", "--steps", "--resume", "--set"],
    ("stylecast-train", "eval"): ["CKPT", "--content", "--style", "--json", "--teacher"],
    ("stylecast-export", "onnx"): ["CKPT", "-o", "--size", "--dynamic", "--float-io", "--images"],
    ("stylecast-export", "quantize"): ["-o", "--precision", "--calib", "--target"],
    ("stylecast-export", "verify"): ["--images", "--json"],
    ("stylecast-export", "engine"): ["-o", "--precision"],
    ("stylecastd", "install"): ["--dry-run", "--root"],
    ("stylecast-ctl", "status"): ["--json"],
    ("stylecast-ctl", "watch"): ["--interval", "--count"],
    ("stylecast-ctl", "set-strength"): ["VALUE", "--style"],
    ("stylecast-ctl", "set-smoothing"): ["VALUE", "--style"],
}


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", sorted(SURFACE))
def test_help_lists_the_command_surface(command):
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    for word in SURFACE[command]:
        assert word in result.stdout, f"{command} --help does not mention {word}"


@pytest.mark.parametrize(("command", "sub"), sorted(SUBCOMMAND_SURFACE))
def test_subcommand_help_lists_its_flags(command, sub):
    result = run(command, sub, "--help")
    assert result.returncode == 0, result.stderr
    for word in SUBCOMMAND_SURFACE[(command, sub)]:
        assert word in result.stdout, f"{command} {sub} --help does not mention {word}"


def test_usage_errors_exit_2():
    result = run("stylecast-train", "presets", "--size", "12")
    assert result.returncode == 2
    assert "expected HxW such as 480x640 (height x width), got '12'" in result.stderr


def test_presets_table_shows_computed_figures():
    result = run("stylecast-train", "presets")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["preset", "params", "GMAC@256x256"]
    for row, line in zip(describe_presets(), lines[1:], strict=True):
        assert line.split() == [row.name, f"{row.params / 1e6:.3f}M", f"{row.gmacs:.3f}"]


def test_presets_json_at_another_size():
    result = run("stylecast-train", "presets", "--json", "--size", "480x640")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    at_256 = describe_presets()
    assert [r["preset"] for r in rows] == [r.name for r in at_256]
    assert all((r["height"], r["width"]) == (480, 640) for r in rows)
    assert rows[0]["gmacs"] == pytest.approx(at_256[0].gmacs * 480 * 640 / 256**2)


def test_user_errors_are_one_line_and_exit_78(capsys):
    def broken() -> int:
        raise ConfigError("stylecast.toml: key 'source' = 'foo://': unknown scheme 'foo'")

    assert run_cli("stylecastd", broken) == EX_CONFIG
    captured = capsys.readouterr()
    assert captured.err == (
        "stylecastd: error: stylecast.toml: key 'source' = 'foo://': unknown scheme 'foo'\n"
    )


@pytest.mark.parametrize(("argv", "line"), [
    (["stylecastd", "--sorce", "test://"],
     "stylecastd: error: unknown flag --sorce (did you mean --source?)"),
    (["stylecastd", "--fps", "10"],
     "stylecastd: error: unknown flag --fps (see stylecastd --help)"),
    (["stylecastd", "install", "--dryrun"],
     "stylecastd: error: unknown flag --dryrun (did you mean --dry-run?)"),
    (["stylecast-sub", "--topik", "raw", "ipc:///tmp/x"],
     "stylecast-sub: error: unknown flag --topik (did you mean --topic?)"),
    (["stylecast-ctl", "--endpont", "ipc:///tmp/x", "status"],
     "stylecast-ctl: error: unknown flag --endpont (did you mean --endpoint?)"),
    (["stylecast-train", "presets", "--sise", "480x640"],
     "stylecast-train: error: unknown flag --sise (did you mean --size?)"),
    (["stylecast-export", "onnx", "c.pt", "--outpt", "x.onnx"],
     "stylecast-export onnx: error: unknown flag --outpt (did you mean --output?)"),
])
def test_a_mistyped_flag_is_named_in_one_line_and_exits_2(argv, line):
    result = run(*argv)
    assert (result.returncode, result.stderr) == (2, line + "\n")


def test_stylecastd_subcommands_still_parse(tmp_path):
    parser = stylecastd_parser()
    install = parser.parse_args(["install", "--dry-run", "--root", str(tmp_path)])
    assert (install.command, install.dry_run, install.root) == ("install", True, tmp_path)
    uninstall = parser.parse_args(["uninstall", "--purge"])
    assert (uninstall.command, uninstall.purge) == ("uninstall", True)
    daemon = parser.parse_args(["--source", "test://", "--model", "m.onnx"])
    assert (daemon.command, daemon.source, daemon.model) == (None, "test://", "m.onnx")
