"""`stylecastd install` / `uninstall`: the systemd service, its config and its folders.

install writes, under --root (default /):

    etc/systemd/system/stylecast.service          the unit, ExecStart = the running stylecastd
    etc/systemd/system/stylecast.service.d/jetson.conf   GPU device access, on a Jetson only
    etc/stylecast/stylecast.toml                   the documented default config, only if absent
    etc/stylecast/stylecast.toml.example           the same, refreshed on every install
    var/lib/stylecast/models/                      where your exported models go

then `systemctl daemon-reload`, `enable` and `restart` (so an upgrade runs the new code at once;
with --root, only `systemctl --root=DIR enable`, which makes the wants/ symlink inside DIR and
talks to no running systemd: the documented way to enable a unit in an image). Running it
again changes no file; an upgrade rewrites the unit but never a config the user has edited.
uninstall disables the service and removes the unit; config, models and engine cache stay
unless --purge.

Before anything is written (and with --dry-run too), install refuses with one line (exit 78) an
ExecStart the service could not run: a stylecastd, or the Python its #! line names (symlinks
followed: a pyenv or uv Python lives under a home folder), under a path the unit hides from the
service. What is hidden is read from the unit and any drop-ins already in the root's
stylecast.service.d/: ProtectHome=yes|tmpfs hides /home, /root and /run/user; PrivateTmp=yes
(which DynamicUser=yes implies) hides /tmp and /var/tmp; InaccessiblePaths= and
TemporaryFileSystem= hide what they name. With --root the check is on the path the unit will
execute, as written into it. --allow-hidden-path installs anyway (a warning instead), for a
unit relaxed elsewhere or an image whose files differ from this machine's.
"""

from __future__ import annotations

import os
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
# What each unit setting hides from the service (systemd.exec(5)).
PROTECT_HOME_HIDES = ("/home", "/root", "/run/user")
PRIVATE_TMP_HIDES = ("/tmp", "/var/tmp")
SUGGESTED_VENV = "/opt/stylecast"  # where docs/deploy-*.md make it
FIX = (f"put the venv and its Python where the service sees them, e.g. /usr/bin/python3 -m venv "
       f"{SUGGESTED_VENV} && {SUGGESTED_VENV}/bin/pip install 'stylecast[daemon,onnx]' && "
       f"sudo {SUGGESTED_VENV}/bin/stylecastd install (--allow-hidden-path installs anyway)")



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


def service_settings(texts: list[str]) -> dict[str, list[str]]:
    """[Service] settings of a unit and its drop-ins, in order: key -> every value assigned."""
    settings: dict[str, list[str]] = {}
    for text in texts:
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, _, value = line.partition("=")
                settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _is_true(value: str) -> bool:
    return value.lower() in ("1", "yes", "y", "true", "t", "on")


def hidden_paths(settings: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(folder, the setting that hides it) for every folder the service cannot see."""
    def last(key: str) -> str:
        return settings.get(key, [""])[-1]

    hidden: list[tuple[str, str]] = []
    protect_home = last("ProtectHome")
    if protect_home.lower() == "tmpfs" or _is_true(protect_home):
        hidden += [(folder, f"ProtectHome={protect_home}") for folder in PROTECT_HOME_HIDES]
    if _is_true(last("PrivateTmp")):
        hidden += [(folder, f"PrivateTmp={last('PrivateTmp')}") for folder in PRIVATE_TMP_HIDES]
    elif _is_true(last("DynamicUser")):  # implies PrivateTmp=yes, which cannot be turned off
        hidden += [(folder, "DynamicUser=yes, which implies PrivateTmp=yes")
                   for folder in PRIVATE_TMP_HIDES]
    for key in ("InaccessiblePaths", "TemporaryFileSystem"):
        entries: list[str] = []
        for value in settings.get(key, []):
            entries = entries + value.split() if value else []  # an empty value resets the list
        for entry in entries:
            folder = entry.lstrip("-+").split(":", 1)[0]  # TemporaryFileSystem=PATH[:OPTIONS]
            hidden.append((folder.rstrip("/") or "/", f"{key}={entry}"))
    return hidden


def _under(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder + "/")


def interpreter_of(script: Path) -> Path | None:
    """The program a script's #! line runs: pip's console scripts name the venv's Python (for a
    long path, through pip's `#!/bin/sh` trampoline whose second line execs it)."""
    try:
        with open(script, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    command = head[0][2:].split()
    if command == ["/bin/sh"]:
        for line in head[1:4]:
            if line.startswith("'''exec' "):
                return Path(line.split()[1].strip('"'))
    return Path(command[0]) if command and command[0].startswith("/") else None


def execution_chain(executable: Path) -> list[tuple[str, str]]:
    """(path, what it is) for each file the kernel opens to run `executable` as ExecStart: the
    file, every file its symlinks lead through, and the same for its #! interpreter."""
    chain = [(str(executable), "the unit's ExecStart")]
    chain += [(hop, f"what {executable} links to") for hop in _links(executable)]
    interpreter = interpreter_of(executable)
    if interpreter is not None:
        chain.append((str(interpreter), f"the Python that {executable} runs, by its #! line"))
        chain += [(hop, f"the Python that {executable} runs: {interpreter} links to it")
                  for hop in _links(interpreter)]
    return chain


def _links(path: Path, limit: int = 40) -> list[str]:
    """Where the symlink `path` leads, hop by hop, ending at the real file (its folders'
    symlinks resolved too); empty for a path that is no symlink."""
    hops: list[str] = []
    current = str(path)
    while os.path.islink(current) and len(hops) < limit:
        current = os.path.normpath(os.path.join(os.path.dirname(current),
                                                os.readlink(current)))
        hops.append(current)
    real = os.path.realpath(path)
    if real != str(path) and (not hops or hops[-1] != real):
        hops.append(real)
    return hops



class Installer:
    """Plans and carries out install/uninstall under `root`."""

    def __init__(self, root: Path, *, dry_run: bool, executable: Path | None = None,
                 out=None, allow_hidden_path: bool = False) -> None:
        self.root = root
        self.dry_run = dry_run
        self.executable = executable or current_executable()
        self.out = out or sys.stdout
        self.live_system = root.resolve() == Path("/")
        self.allow_hidden_path = allow_hidden_path

    # --- install -----------------------------------------------------------------------------

    def install(self) -> None:
        unit_dir = self.root / UNIT_DIR
        unit = render_unit(self.executable)
        if not self._check_executable_is_visible(unit):
            self._warn_about_home()
        self._file(unit_dir / SERVICE, unit, replace=True)
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

    def _check_executable_is_visible(self, unit: str) -> bool:
        """ConfigError (exit 78) if the unit hides a file its ExecStart needs to run; with
        --allow-hidden-path a warning instead, and True."""
        dropins = sorted((self.root / UNIT_DIR / f"{SERVICE}.d").glob("*.conf"))
        settings = service_settings([unit] + [d.read_text(encoding="utf-8") for d in dropins])
        hidden = hidden_paths(settings)
        for path, what in execution_chain(self.executable):
            for folder, setting in hidden:
                if not _under(path, folder):
                    continue
                problem = (f"{path} ({what}) is under {folder}, which {setting} hides from "
                           "the service: it would not start")
                if not self.allow_hidden_path:
                    raise ConfigError(f"{problem}: {FIX}")
                print(f"warning: {problem}; installing anyway (--allow-hidden-path)",
                      file=sys.stderr)
                return True
        return False

    def _warn_about_home(self) -> None:
        """A home folder the unit does not hide (a drop-in's ProtectHome=read-only or no) is
        still usually private (0700) to the service's dynamic user."""
        if str(self.executable).startswith(HOME_PREFIXES):
            print(f"warning: {self.executable} is under a home folder, which the service's "
                  f"user usually cannot read: create the venv under /opt, e.g. "
                  f"python3 -m venv {SUGGESTED_VENV}", file=sys.stderr)

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

