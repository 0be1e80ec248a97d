"""`stylecastd install` / `uninstall`: the systemd service, its config and its folders.

install writes, under --root (default /):

    etc/systemd/system/stylecast.service          the unit, ExecStart = the running stylecastd
    etc/systemd/system/stylecast.service.d/jetson.conf   GPU device access, on a Jetson only
    etc/stylecast/stylecast.toml                   the documented default config, only if absent
    etc/stylecast/stylecast.toml.example           the same, refreshed on every install
    var/lib/stylecast/models/                      where your exported models go

then `systemctl daemon-reload`, `enable` and `restart` (so an upgrade runs the new code at once;
with --root, only `systemctl --root=DIR enable`, which needs no running systemd). Running it
again changes no file; an upgrade rewrites the unit but never a config the user has edited.
uninstall disables the service and removes the unit; config, models and engine cache stay
unless --purge.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stylecast.core.atomic import atomic_write_text
from stylecast.core.errors import ConfigError, StylecastError

SERVICE = "stylecast.service"
UNIT_DIR = Path("etc/systemd/system")
CONFIG_DIR = Path("etc/stylecast")
STATE_DIR = Path("var/lib/stylecast")
CONFIG_NAME = "stylecast.toml"
JETSON_MARKER = Path("etc/nv_tegra_release")
DEFAULT_EXEC = "/usr/local/bin/stylecastd"
# DynamicUser services cannot read home folders (ProtectHome=yes; and /home/* is usually 0700).
HOME_PREFIXES = ("/home/", "/root/")


@dataclass(frozen=True)
class Action:
    """One step of an install, said before it is done (and only said with --dry-run)."""

    verb: str  # write | keep | unchanged | mkdir | run | remove
    target: str
    why: str = ""

    def __str__(self) -> str:
        return f"{self.verb:9} {self.target}" + (f"  ({self.why})" if self.why else "")


def shipped_text(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def render_unit(executable: Path) -> str:
    """The shipped unit with ExecStart pointing at `executable`."""
    unit = shipped_text("stylecast.systemd", SERVICE)
    if DEFAULT_EXEC not in unit:
        raise AssertionError(f"{SERVICE} has no ExecStart={DEFAULT_EXEC} to replace")
    return unit.replace(DEFAULT_EXEC, str(executable))


def current_executable() -> Path:
    """The stylecastd next to the running interpreter: the venv's, for a venv install."""
    found = Path(sys.executable).with_name("stylecastd")
    if not found.exists():
        raise ConfigError(f"cannot find stylecastd next to {sys.executable}; "
                          "run `stylecastd install` from the environment it is installed in")
    return found


def is_jetson(root: Path) -> bool:
    return (root / JETSON_MARKER).exists()


class Installer:
    """Plans and carries out install/uninstall under `root`."""

    def __init__(self, root: Path, *, dry_run: bool, executable: Path | None = None,
                 out=None) -> None:
        self.root = root
        self.dry_run = dry_run
        self.executable = executable or current_executable()
        self.out = out or sys.stdout
        self.live_system = root.resolve() == Path("/")

    # --- install -----------------------------------------------------------------------------

    def install(self) -> None:
        self._warn_about_home()
        unit_dir = self.root / UNIT_DIR
        self._file(unit_dir / SERVICE, render_unit(self.executable), replace=True)
        dropin = unit_dir / f"{SERVICE}.d" / "jetson.conf"
        if is_jetson(self.root):
            self._file(dropin, shipped_text("stylecast.systemd", "jetson.conf"), replace=True)
        config = shipped_text("stylecast.configs", CONFIG_NAME)
        self._file(self.root / CONFIG_DIR / f"{CONFIG_NAME}.example", config, replace=True)
        self._file(self.root / CONFIG_DIR / CONFIG_NAME, config, replace=False)
        self._mkdir(self.root / STATE_DIR / "models")
        if self.live_system:
            self._systemctl("daemon-reload")
            self._systemctl("enable", SERVICE)
            self._systemctl("restart", SERVICE)  # (re)start it on the code just installed
        elif (self.root / UNIT_DIR / "multi-user.target.wants" / SERVICE).is_symlink():
            self._say(Action("unchanged", f"{SERVICE} enabled"))
        else:
            self._systemctl(f"--root={self.root}", "enable", SERVICE)

    def _file(self, path: Path, text: str, *, replace: bool) -> None:
        if path.exists():
            if path.read_text(encoding="utf-8") == text:
                self._say(Action("unchanged", str(path)))
                return
            if not replace:
                self._say(Action("keep", str(path), "edited by you; the new default is in "
                                 f"{path.name}.example"))
                return
        self._say(Action("write", str(path)))
        if not self.dry_run:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
            path.chmod(0o644)  # systemd and the service's user read it, whatever our umask

    def _mkdir(self, path: Path) -> None:
        if path.is_dir():
            self._say(Action("unchanged", f"{path}/"))
            return
        self._say(Action("mkdir", f"{path}/"))
        if not self.dry_run:
            path.mkdir(mode=0o755, parents=True, exist_ok=True)

    def _warn_about_home(self) -> None:
        if str(self.executable).startswith(HOME_PREFIXES):
            print(f"warning: {self.executable} is under a home folder, which the service's "
                  "user cannot read (ProtectHome=yes): create the venv under /opt, e.g. "
                  "python3 -m venv /opt/stylecast", file=sys.stderr)

    # --- uninstall ---------------------------------------------------------------------------

    def uninstall(self, *, purge: bool) -> None:
        unit = self.root / UNIT_DIR / SERVICE
        if self.live_system:
            self._systemctl("disable", "--now", SERVICE, check=False)
        elif unit.exists():
            self._systemctl(f"--root={self.root}", "disable", SERVICE, check=False)
        self._remove(unit)
        self._remove(self.root / UNIT_DIR / f"{SERVICE}.d")
        if purge:
            self._remove(self.root / CONFIG_DIR)
            self._remove(self.root / STATE_DIR)
            self._remove(self.root / "var/lib/private/stylecast")  # DynamicUser's real folder
        else:
            print(f"kept {self.root / CONFIG_DIR} and {self.root / STATE_DIR} "
                  "(your config, models and engine cache); --purge removes them",
                  file=self.out)
        if self.live_system:
            self._systemctl("daemon-reload")

    def _remove(self, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return
        self._say(Action("remove", str(path)))
        if self.dry_run:
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()

    # --- systemctl ---------------------------------------------------------------------------

    def _systemctl(self, *args: str, check: bool = True) -> None:
        command = ["systemctl", *args]
        self._say(Action("run", " ".join(command)))
        if self.dry_run:
            return
        if shutil.which("systemctl") is None:
            raise StylecastError("systemctl not found: this machine does not run systemd")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode and check:
            reason = (result.stderr or result.stdout).strip().splitlines()
            raise StylecastError(f"`{' '.join(command)}` failed: "
                                 f"{reason[-1] if reason else f'exit {result.returncode}'}")

    def _say(self, action: Action) -> None:
        prefix = "would " if self.dry_run else ""
        print(prefix + str(action), file=self.out)
        if not self.dry_run:
            self.out.flush()

