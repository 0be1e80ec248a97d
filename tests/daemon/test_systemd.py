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
from stylecast.daemon.install import (
    SERVICE,
    execution_chain,
    hidden_paths,
    render_unit,
    service_settings,
    shipped_text,
)
from stylecast.daemon.main import main as stylecastd_main

ROOT = Path(__file__).resolve().parents[2]
STYLECASTD = Path(sys.executable).with_name("stylecastd")
MAX_EXPOSURE = 3.5

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (.ci/run installs it; apt install systemd)")


def install(root: Path, *args: str) -> subprocess.CompletedProcess:
    # This checkout's own venv may be one the unit hides from the service (a pyenv Python under
    # /root, a CI venv under /tmp): these tests are about the files written, so they install
    # anyway; the refusal has tests of its own (test_a_hidden_*).
    allow = ["--allow-hidden-path"] if args[:1] == ("install",) else []
    return subprocess.run([str(STYLECASTD), *args, "--root", str(root), *allow],
                          capture_output=True, text=True, timeout=120)


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


# --- an ExecStart the unit hides from the service ------------------------------------------


def fake_venv(folder: Path, python: Path) -> Path:
    """folder/bin/stylecastd as pip writes it: a #! script naming folder/bin/python, a symlink
    to `python`. Returns the script."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(python)
    script = bin_dir / "stylecastd"
    script.write_text(f"#!{bin_dir / 'python'}\nimport sys\nfrom stylecast.daemon.main import "
                      "main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def run_install(monkeypatch, capsys, script: Path, root: Path, *args: str) -> tuple[int, str]:
    """`stylecastd install` run from the venv of `script` (its sys.executable beside it)."""
    monkeypatch.setattr(sys, "executable", str(script.with_name("python")))
    code = stylecastd_main(["install", "--root", str(root), *args])
    return code, capsys.readouterr().err


def test_the_shipped_unit_hides_home_folders_and_tmp():
    hidden = dict(hidden_paths(service_settings([render_unit(STYLECASTD)])))
    assert hidden == {"/home": "ProtectHome=yes", "/root": "ProtectHome=yes",
                      "/run/user": "ProtectHome=yes", "/tmp": "PrivateTmp=yes",
                      "/var/tmp": "PrivateTmp=yes"}
    relaxed = service_settings([render_unit(STYLECASTD), "[Service]\nProtectHome=read-only\n"
                                "PrivateTmp=no\nInaccessiblePaths=-/srv/a /srv/b\n"])
    # DynamicUser=yes implies PrivateTmp=yes whatever PrivateTmp= says.
    assert hidden_paths(relaxed) == [
        ("/tmp", "DynamicUser=yes, which implies PrivateTmp=yes"),
        ("/var/tmp", "DynamicUser=yes, which implies PrivateTmp=yes"),
        ("/srv/a", "InaccessiblePaths=-/srv/a"), ("/srv/b", "InaccessiblePaths=/srv/b")]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_hidden_execstart_is_refused_in_one_line_before_anything_is_written(
        tmp_path, monkeypatch, capsys, dry_run):
    """The issue's case: a venv under /tmp (PrivateTmp=yes) or a home folder (ProtectHome=yes)."""
    script = fake_venv(tmp_path / "venv", Path(sys.executable))
    root = tmp_path / "root"
    code, err = run_install(monkeypatch, capsys, script, root, *(["--dry-run"] * dry_run))
    assert code == EX_CONFIG
    assert err.count("\n") == 1, err
    assert err.startswith(f"stylecastd: error: {script} (the unit's ExecStart) is under /tmp, "
                          "which PrivateTmp=yes hides from the service: it would not start: ")
    assert "/usr/bin/python3 -m venv /opt/stylecast && " in err
    assert not root.exists()  # with --root, the path the unit runs is checked all the same


def test_a_hidden_python_behind_the_execstart_is_refused(tmp_path, monkeypatch, capsys):
    """A drop-in already in the root is read too: here it lets the service see /tmp but hides
    the folder the venv's python symlink ends in (as a pyenv Python under /root is hidden)."""
    pyenv_python = tmp_path / "pyenv" / "python3.11"  # only looked at, never run
    pyenv_python.parent.mkdir()
    pyenv_python.write_text("")
    script = fake_venv(tmp_path / "venv", pyenv_python)
    root = tmp_path / "root"
    dropins = root / "etc" / "systemd" / "system" / f"{SERVICE}.d"
    dropins.mkdir(parents=True)
    override = dropins / "override.conf"
    override.write_text(f"[Service]\nDynamicUser=no\nPrivateTmp=no\n"
                        f"InaccessiblePaths={tmp_path / 'pyenv'}\n")
    code, err = run_install(monkeypatch, capsys, script, root)
    assert code == EX_CONFIG
    assert err.startswith(f"stylecastd: error: {pyenv_python} (the Python that {script} runs: "
                          f"{script.with_name('python')} links to it) is under "
                          f"{tmp_path / 'pyenv'}, which InaccessiblePaths="), err
    assert not (root / "etc" / "systemd" / "system" / SERVICE).exists()

    # The same drop-in without the hidden folder: nothing hidden, so it installs.
    override.write_text("[Service]\nDynamicUser=no\nPrivateTmp=no\n")
    code, err = run_install(monkeypatch, capsys, script, root)
    if shutil.which("systemctl") is None:
        pytest.skip("systemctl is not installed: the files were checked up to enable")
    assert code == 0, err
    unit = (root / "etc" / "systemd" / "system" / SERVICE).read_text()
    assert f"ExecStart={script} --config" in unit


def test_allow_hidden_path_installs_with_a_warning(tmp_path, monkeypatch, capsys):
    script = fake_venv(tmp_path / "venv", Path(sys.executable))
    code, err = run_install(monkeypatch, capsys, script, tmp_path / "root", "--dry-run",
                            "--allow-hidden-path")
    assert code == 0
    assert err.startswith(f"warning: {script} (the unit's ExecStart) is under /tmp, which "
                          "PrivateTmp=yes hides from the service: it would not start; installing "
                          "anyway (--allow-hidden-path)\n")


def test_execution_chain_follows_symlinks_and_the_interpreter(tmp_path):
    real = tmp_path / "pyenv" / "versions" / "python3.11"  # only looked at, never run
    real.parent.mkdir(parents=True)
    real.write_text("")
    (tmp_path / "pyenv" / "python3").symlink_to("versions/python3.11")  # a relative link
    script = fake_venv(tmp_path / "venv", tmp_path / "pyenv" / "python3")
    assert [path for path, _ in execution_chain(script)] == [
        str(script), str(script.with_name("python")), str(tmp_path / "pyenv" / "python3"),
        str(real)]
    long_form = tmp_path / "long"  # pip's trampoline for a #! line too long for the kernel
    long_form.write_text("#!/bin/sh\n'''exec' \"/opt/a b/python\" \"$0\" \"$@\"\n' '''\n")
    assert [path for path, _ in execution_chain(long_form)] == [str(long_form), "/opt/a"]


def test_root_help_says_what_systemctl_does_there():
    result = subprocess.run([str(STYLECASTD), "install", "--help"], capture_output=True,
                            text=True, timeout=60)
    text = " ".join(result.stdout.split())
    assert "`systemctl --root=DIR`" in text and "systemd is not touched" not in text
