"""CURVE security for the daemon's sockets: key files, the folder of authorized client keys, and
the ZAP authenticator that checks every connecting client against that folder.

Key files are ZeroMQ certificates as pyzmq's zmq.auth writes them (the czmq "zcert" text format):
`NAME.key` holds a public key and may be shared; `NAME.key_secret` holds the key pair and must be
readable by its owner only. A client is let in when its public key is in one of the `*.key` files
of the authorized folder; any other client never completes the handshake and receives nothing.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
import shutil
import stat
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from stylecast.core.atomic import fsync_path
from stylecast.core.errors import ConfigError, StylecastError
from stylecast.core.validation import NAME_PATTERN

log = logging.getLogger(__name__)

DEFAULT_KEY_NAME = "stylecast"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
# Our sockets ask the authenticator about this domain; it only knows the keys configured for it.
ZAP_DOMAIN = "stylecast"
Z85_KEY_LENGTH = 40  # a 32-byte CURVE key in Z85 text
KEYGEN_HINT = "make a key pair with `stylecast-ctl keygen DIR`"
AUTHENTICATOR_START_ATTEMPTS = 40  # 50 ms apart


# --- key files -----------------------------------------------------------------------------


def load_public_key(path: Path) -> bytes:
    """The Z85 public key in a certificate file (`.key`, or the public half of `.key_secret`)."""
    public, _ = _read_certificate(path, "public key file")
    return public


def load_secret_key(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a `.key_secret` file that only its owner can read."""
    mode = _file_mode(path, "secret key file")
    if mode & 0o077:
        raise ConfigError(f"secret key {path} is readable by others (mode {mode:04o}): "
                          f"chmod 600 {path}")
    public, secret = _read_certificate(path, "secret key file")
    if secret is None:
        raise ConfigError(f"secret key file {path} holds only a public key: give the "
                          f"{SECRET_SUFFIX} file of the pair")
    return public, secret


def _stat(path: Path, what: str, hint: str = "") -> os.stat_result:
    """stat() with one-line errors: '{what} PATH not found (hint)' or 'cannot read ...'."""
    try:
        return path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found" + (f" ({hint})" if hint else "")) from None
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror}") from None


def _file_mode(path: Path, what: str) -> int:
    info = _stat(path, what, KEYGEN_HINT)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {path} is not a file")
    return stat.S_IMODE(info.st_mode)


def _read_certificate(path: Path, what: str) -> tuple[bytes, bytes | None]:
    _file_mode(path, what)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror or err}") from None
    except ValueError:
        public, secret = b"", None
    if not _is_z85_key(public) or (secret is not None and not _is_z85_key(secret)):
        raise ConfigError(f"{what} {path} is not a ZeroMQ CURVE certificate "
                          f"(no valid public-key line; {KEYGEN_HINT})")
    return public, secret


def _is_z85_key(key: bytes) -> bool:
    if len(key) != Z85_KEY_LENGTH:
        return False
    try:
        z85.decode(key)
    except (ValueError, KeyError, struct.error):  # outside the Z85 alphabet, or over 2**32
        return False
    return True


def check_authorized_dir(path: Path) -> list[Path]:
    """The `*.key` files of the authorized clients folder, each checked to hold a public key.

    A folder that others may write to is refused: anyone could authorize themselves.
    """
    info = _stat(path, "authorized_keys folder")
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"authorized_keys {path} is not a folder (of client *.key files)")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o002:
        raise ConfigError(f"authorized_keys folder {path} is writable by others "
                          f"(mode {mode:04o}): chmod o-w {path}")
    try:
        files = sorted(path.glob(f"*{PUBLIC_SUFFIX}"))
    except OSError as err:
        raise ConfigError(f"cannot list authorized_keys folder {path}: {err.strerror}") from None
    for file in files:
        load_public_key(file)
    return files


@dataclass(frozen=True)
class KeyPairFiles:
    """What `write_key_pair` wrote."""

    public_file: Path
    secret_file: Path
    public_key: str


def write_key_pair(directory: Path, name: str = DEFAULT_KEY_NAME, *,
                   force: bool = False) -> KeyPairFiles:
    """Write `directory/name.key` (0644) and `directory/name.key_secret` (0600).

    The pair is made in a private (0700) staging folder inside `directory` and renamed into place,
    so the secret key is never readable by others, and each file appears whole or not at all.
    Existing files are refused unless `force`. A new `directory` is made 0700.
    """
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(f"key name {name!r} must match {NAME_PATTERN}")
    public_file = directory / f"{name}{PUBLIC_SUFFIX}"
    secret_file = directory / f"{name}{SECRET_SUFFIX}"
    existing = [str(p) for p in (public_file, secret_file) if os.path.lexists(p)]
    if existing and not force:
        raise ConfigError(f"{' and '.join(existing)} already exist{'s' * (len(existing) == 1)}: "
                          "pass --force to replace the key pair")
    try:
        _make_private_dir(directory)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.keygen-", dir=directory))
        try:
            made_public, made_secret = map(Path, zmq.auth.create_certificates(staging, name))
            os.chmod(made_secret, 0o600)
            os.chmod(made_public, 0o644)
            for made in (made_secret, made_public):
                fsync_path(made)
            # Public last: a public key file on disk means its secret half is there too.
            os.replace(made_secret, secret_file)
            os.replace(made_public, public_file)
            fsync_path(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise ConfigError(f"cannot write a key pair to {directory}: "
                          f"{err.strerror or err}") from None
    return KeyPairFiles(public_file, secret_file, load_public_key(public_file).decode())


def _make_private_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(mode=0o700, parents=True)
    os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask



# --- client side -----------------------------------------------------------------------------


class ClientKeys(NamedTuple):
    """What a CURVE client needs: the server's public key and its own key pair (Z85 bytes)."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_public_file: Path, client_secret_file: Path) -> ClientKeys:
        """From the server's `.key` file and the client's own `.key_secret` file."""
        client_public, client_secret = load_secret_key(Path(client_secret_file))
        return cls(load_public_key(Path(server_public_file)), client_public, client_secret)


def make_curve_client(sock: zmq.Socket, keys: ClientKeys) -> None:
    """Make `sock` a CURVE client of the server; call before connect(). `keys` may be any object
    with ClientKeys' three attributes."""
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.client_public
    sock.curve_secretkey = keys.client_secret


# --- server side -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerKeys:
    """The daemon's CURVE key pair (Z85 bytes)."""

    public: bytes
    secret: bytes = field(repr=False)  # never in a log line or a traceback


def load_server_keys(secret_key_file: Path | None, authorized_keys: Path | None
                     ) -> ServerKeys | None:
    """Check the [security] files; the server key pair, or None when CURVE is off."""
    if secret_key_file is None:
        return None
    public, secret = load_secret_key(secret_key_file)
    if authorized_keys is None:
        raise ConfigError("security.curve_secret_key is set but security.authorized_keys is not")
    check_authorized_dir(authorized_keys)
    return ServerKeys(public, secret)


class CurveServer:
    """The ZAP authenticator of one zmq context, and the CURVE server options for its sockets.

    A context has at most one ZAP handler: make one CurveServer per context, and close it only
    after the sockets it secured are closed (a CURVE socket whose authenticator is gone would let
    any client with the server's public key in).
    """

    def __init__(self, context: zmq.Context, keys: ServerKeys, authorized_keys: Path) -> None:
        self.keys = keys
        self._authenticator = _start_authenticator(context)
        try:
            self.authorize(authorized_keys)
        except BaseException:
            self._authenticator.stop()
            raise

    def authorize(self, folder: Path) -> None:
        """(Re)read the authorized client keys: the clients let in from now on."""
        files = check_authorized_dir(folder)
        self._authenticator.configure_curve(domain=ZAP_DOMAIN, location=os.fspath(folder))
        if files:
            log.info("CURVE on: %d authorized client key file(s) in %s", len(files), folder)
        else:
            log.warning("CURVE on, but %s has no *.key file: every client is refused", folder)

    def apply(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server checked by this authenticator; call before bind()."""
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.curve_server = True

    def close(self) -> None:
        self._authenticator.stop()


def _start_authenticator(context: zmq.Context) -> ThreadAuthenticator:
    """A started ZAP handler for `context`, retrying briefly while a previous one (stopped on a
    reload) still holds the context's ZAP endpoint: libzmq releases it asynchronously."""
    for attempt in range(AUTHENTICATOR_START_ATTEMPTS):
        authenticator = ThreadAuthenticator(context, log=log.getChild("zap"))
        try:
            authenticator.start()
            return authenticator
        except zmq.ZMQError as err:
            authenticator.stop()
            if err.errno != errno.EADDRINUSE or attempt == AUTHENTICATOR_START_ATTEMPTS - 1:
                raise StylecastError(f"cannot start the CURVE authenticator: {err}") from None
            time.sleep(0.05)
    raise AssertionError("unreachable")


# --- exposure ----------------------------------------------------------------------------------


def is_exposed(endpoint: str) -> bool:
    """True for a tcp endpoint other hosts may reach: not bound to a loopback address."""
    if not endpoint.startswith("tcp://"):
        return False  # ipc (file permissions) and inproc (this process) stay on this host
    host = endpoint.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host not in ("localhost", "lo")  # "*", interface and host names: assume exposed


def warn_if_exposed(endpoints: list[str], what: str) -> None:
    """One WARNING per endpoint that the network reaches without CURVE."""
    for endpoint in endpoints:
        if is_exposed(endpoint):
            log.warning("%s %s is reachable from the network without CURVE: anyone who can "
                        "connect to it can use it; set [security] curve_secret_key and "
                        "authorized_keys, or bind to 127.0.0.1", what, endpoint)
