"""Binding the daemon's ZeroMQ endpoints: default locations, ipc socket files, one-line errors.

libzmq unlinks an existing file when it binds an `ipc://` path, so a second daemon would silently
steal the first one's socket. Before binding we therefore probe the file with a plain AF_UNIX
connect: a listener answers (in use: refuse), a leftover of a dead process refuses (stale:
remove it and bind).

Who may connect to an ipc endpoint is up to file permissions: the socket file is made 0660 (its
owner and group may connect, others not) and a directory we create for it 0750. A directory that
already exists keeps its mode: it may be shared (/tmp) or set by systemd (RuntimeDirectoryMode=).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from pathlib import Path

import zmq

from stylecast.core.errors import ConfigError

APP = "stylecast"
SYSTEM_RUN_DIR = Path("/run")
PROBE_TIMEOUT_S = 1.0
SOCKET_MODE = 0o660  # connecting needs write permission on the socket file
DIRECTORY_MODE = 0o750


def default_runtime_dir() -> Path:
    """Where the daemon's ipc sockets live, so that stylecastd and stylecast-ctl agree.

    systemd's $RUNTIME_DIRECTORY (RuntimeDirectory=) first; then /run/stylecast when it exists or
    we may create it; then $XDG_RUNTIME_DIR/stylecast for a user session; else /tmp/stylecast-UID.
    """
    runtime_directory = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime_directory:
        return Path(runtime_directory)
    system = SYSTEM_RUN_DIR / APP
    if system.is_dir() or os.access(SYSTEM_RUN_DIR, os.W_OK):
        return system
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / APP
    return Path(f"/tmp/{APP}-{os.getuid()}")


def default_control_endpoint() -> str:
    return f"ipc://{default_runtime_dir() / 'control'}"


def ipc_path(endpoint: str) -> Path | None:
    """The socket file of an `ipc://` endpoint; None for other transports, abstract (`@name`)
    and wildcard (`*`) ipc endpoints, which have no file to look after."""
    if not endpoint.startswith("ipc://"):
        return None
    path = endpoint.removeprefix("ipc://")
    if not path or path.startswith("@") or path == "*":
        return None
    return Path(path)


def prepare_ipc_endpoint(endpoint: str, what: str) -> None:
    """Make an ipc endpoint bindable: create its directory (0750), remove a stale socket file,
    refuse one that a live process listens on. Does nothing for other endpoints."""
    path = ipc_path(endpoint)
    if path is None:
        return
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            os.chmod(path.parent, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    except OSError as err:
        raise ConfigError(f"{what} {endpoint!r}: cannot create directory {path.parent}: "
                          f"{err.strerror}") from None
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise ConfigError(f"{what} {endpoint!r}: cannot check {path}: {err.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{what} {endpoint!r}: {path} exists and is not a socket")
    if socket_has_listener(path, endpoint, what):
        raise ConfigError(f"{what} {endpoint!r} is in use by another process "
                          "(is stylecastd already running?)")
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # its owner just removed it
    except OSError as err:
        raise ConfigError(f"{what} {endpoint!r}: cannot remove the stale socket {path}: "
                          f"{err.strerror}") from None


def socket_has_listener(path: Path, endpoint: str, what: str) -> bool:
    """True when a process accepts connections on the unix stream socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(os.fspath(path))
        except TimeoutError:
            return True  # a listener with a full backlog is still a listener
        except OSError as err:
            if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise ConfigError(f"{what} {endpoint!r}: cannot check whether {path} is in use: "
                              f"{err.strerror or err}") from None
        return True


def bind(sock: zmq.Socket, endpoint: str, what: str) -> str:
    """Bind `sock` to `endpoint` (after prepare_ipc_endpoint) and return the endpoint it got
    (`tcp://127.0.0.1:*` resolves to a port); any failure is a ConfigError naming both.
    An ipc socket file is made 0660: owner and group may connect, others may not."""
    prepare_ipc_endpoint(endpoint, what)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        raise ConfigError(f"cannot bind {what} {endpoint!r}: {zmq.strerror(err.errno)}") from None
    last = sock.getsockopt(zmq.LAST_ENDPOINT)
    bound = last.decode() if isinstance(last, bytes) else str(last)
    path = ipc_path(bound)
    if path is not None:
        try:
            os.chmod(path, SOCKET_MODE)
        except OSError as err:
            with contextlib.suppress(zmq.ZMQError):
                sock.unbind(bound)
            raise ConfigError(f"{what} {endpoint!r}: cannot set the mode of {path}: "
                              f"{err.strerror}") from None
    return bound


def ipc_socket_identity(endpoint: str) -> tuple[int, int] | None:
    """(device, inode) of an ipc endpoint's socket file right after we bound it, else None."""
    path = ipc_path(endpoint)
    try:
        info = path.lstat() if path is not None else None
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if info is not None else None


def remove_ipc_socket(endpoint: str, identity: tuple[int, int] | None) -> None:
    """Remove the socket file we bound (libzmq leaves it behind), unless it is no longer ours."""
    path = ipc_path(endpoint)
    if path is None or identity is None or ipc_socket_identity(endpoint) != identity:
        return
    with contextlib.suppress(OSError):
        path.unlink()
