"""The systemd unit and `stylecastd install`/`uninstall`, checked with systemd's own tools.

`systemd-analyze verify` reports unknown keys and bad values on stderr but still exits 0, so any
stderr output fails the test. The service itself is not started here: these machines do not run
systemd as PID 1, so the notify/watchdog behaviour is tested against a fake NOTIFY_SOCKET in
test_daemon.py instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stylecast.core.errors import EX_CONFIG
from stylecast.daemon.config import DEFAULT_CONFIG
from stylecast.daemon.install import SERVICE, render_unit, shipped_text

ROOT = Path(__file__).resolve().parents[2]
STYLECASTD = Path(sys.executable).with_name("stylecastd")
MAX_EXPOSURE = 3.5

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (.ci/run installs it; apt install systemd)")


def install(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(STYLECASTD), *args, "--root", str(root)], capture_output=True,
                          text=True, timeout=120)


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def snapshot(root: Path) -> dict[str, tuple[float, bytes]]:
    return {str(p.relative_to(root)): (p.lstat().st_mtime, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def installed(tmp_path):
    root = tmp_path / "root"
    result = install(root, "install")
    assert result.returncode == 0, result.stderr
    return root


def test_the_shipped_unit_is_the_one_in_the_repository():
    assert shipped_text("stylecast.systemd", SERVICE) == (ROOT / "systemd" / SERVICE).read_text()


def test_unit_matches_what_the_daemon_does():
    settings = unit_settings(render_unit(STYLECASTD))
    assert settings["Type"] == ["notify"] and settings["NotifyAccess"] == ["main"]
    assert settings["ExecStart"] == [f"{STYLECASTD} --config {DEFAULT_CONFIG}"]
    assert settings["RestartPreventExitStatus"] == [str(EX_CONFIG)]
    assert settings["Restart"] == ["on-failure"]
    assert settings["RuntimeDirectory"] == ["stylecast"]  # the daemon's ipc sockets live there
    assert settings["StateDirectory"] == ["stylecast"]  # engine cache (STATE_DIRECTORY)
    assert "char-video4linux rw" in settings["DeviceAllow"]
    assert "PrivateDevices" not in settings  # it would hide the cameras


@needs_analyze
def test_systemd_analyze_verify_is_clean(installed, tmp_path):
    (installed / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
    assert install(installed, "install").returncode == 0  # now with the Jetson drop-in
    unit_dir = installed / "etc" / "systemd" / "system"
    assert (unit_dir / f"{SERVICE}.d" / "jetson.conf").is_file()
    # SYSTEMD_UNIT_PATH makes verify read the drop-in folder next to the unit too.
    result = subprocess.run(["systemd-analyze", "verify", str(unit_dir / SERVICE)],
                            capture_output=True, text=True, timeout=120,
                            env={"SYSTEMD_UNIT_PATH": f"{unit_dir}:", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_analyze
def test_security_exposure_is_low(installed):
    unit = installed / "etc" / "systemd" / "system" / SERVICE
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match[1])
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{result.stdout}"


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    result = install(tmp_path / "root", "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "root").exists()
    lines = result.stdout.splitlines()
    assert all(line.startswith("would ") for line in lines)
    for expected in ("etc/systemd/system/stylecast.service", "etc/stylecast/stylecast.toml",
                     "var/lib/stylecast/models/", "systemctl --root="):
        assert any(expected in line for line in lines), expected


def test_install_writes_unit_config_and_folders(installed):
    unit = installed / "etc" / "systemd" / "system" / SERVICE
    assert unit.read_text() == render_unit(STYLECASTD)
    assert oct(unit.stat().st_mode & 0o777) == "0o644"
    config = installed / "etc" / "stylecast" / "stylecast.toml"
    assert config.read_text() == (ROOT / "configs" / "stylecast.toml").read_text()
    assert (installed / "etc" / "stylecast" / "stylecast.toml.example").read_text() == \
        config.read_text()
    assert (installed / "var" / "lib" / "stylecast" / "models").is_dir()
    wants = installed / "etc" / "systemd" / "system" / "multi-user.target.wants" / SERVICE
    assert wants.is_symlink()  # enabled, by `systemctl --root`
    assert not (installed / "etc" / "systemd" / "system" / f"{SERVICE}.d").exists()


def test_installing_twice_changes_nothing(installed):
    before = snapshot(installed)
    result = install(installed, "install")
    assert result.returncode == 0, result.stderr
    assert snapshot(installed) == before
    assert all(line.startswith("unchanged") for line in result.stdout.splitlines())


def test_an_edited_config_survives_a_reinstall(installed):
    config = installed / "etc" / "stylecast" / "stylecast.toml"
    config.write_text('[source]\nuri = "v4l2:///dev/video0"\n')
    result = install(installed, "install")
    assert result.returncode == 0, result.stderr
    assert config.read_text() == '[source]\nuri = "v4l2:///dev/video0"\n'
    assert re.search(r"^keep .*stylecast\.toml .*edited", result.stdout, re.M)


def test_uninstall_keeps_user_data_unless_purged(installed):
    (installed / "var" / "lib" / "stylecast" / "models" / "mine.onnx").write_bytes(b"model")
    result = install(installed, "uninstall")
    assert result.returncode == 0, result.stderr
    assert not (installed / "etc" / "systemd" / "system" / SERVICE).exists()
    assert not (installed / "etc" / "systemd" / "system" / "multi-user.target.wants" /
                SERVICE).exists()
    assert (installed / "etc" / "stylecast" / "stylecast.toml").exists()
    assert (installed / "var" / "lib" / "stylecast" / "models" / "mine.onnx").exists()
    result = install(installed, "uninstall", "--purge")
    assert result.returncode == 0, result.stderr
    assert not (installed / "etc" / "stylecast").exists()
    assert not (installed / "var" / "lib" / "stylecast").exists()
