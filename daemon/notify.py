"""systemd service notifications (sd_notify) without libsystemd: datagrams to $NOTIFY_SOCKET.

The protocol is a single datagram of newline-separated `KEY=VALUE` fields sent to the AF_UNIX
socket named by $NOTIFY_SOCKET ("/path", or "@name" for the abstract namespace); see
sd_notify(3). Under `Type=notify` the daemon says READY=1 once it serves, pings WATCHDOG=1 at
half of $WATCHDOG_USEC while it makes progress, and says STOPPING=1 on shutdown.

Notifying never raises: a daemon must not die because its supervisor went away. A failed send is
logged once as a warning (and at debug level after that).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# A full notify queue (systemd hung) must not stall the pipeline thread that pings the watchdog.
SEND_TIMEOUT_S = 1.0


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares RELOADING=1 against."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def one_line(text: str) -> str:
    """STATUS= is a single field: newlines would start a new KEY=VALUE field."""
    return " ".join(text.splitlines())


def socket_address(notify_socket: str) -> str | None:
    """The AF_UNIX address for $NOTIFY_SOCKET, or None for a kind we do not speak (vsock)."""
    if notify_socket.startswith("/"):
        return notify_socket
    if notify_socket.startswith("@"):
        return "\0" + notify_socket[1:]
    return None


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC in seconds, when the watchdog is on and meant for this process."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid.strip() != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class SystemdNotifier:
    """Sends sd_notify messages; every method is a no-op when $NOTIFY_SOCKET is not set.

    Thread-safe: the pipeline pings the watchdog while the main thread reports status.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._notify_socket = environ.get("NOTIFY_SOCKET", "")
        self.enabled = bool(self._notify_socket)
        self.watchdog_interval_s = watchdog_interval(environ)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    def notify(self, *fields: str) -> None:
        """Send the fields as one datagram "A=1\\nB=2"; never raises."""
        if not self.enabled:
            return
        message = "\n".join(fields).encode("utf-8", errors="replace")
        with self._lock:
            try:
                self._send(message)
            except OSError:
                # The socket may have been replaced (systemd re-executed): reconnect once.
                self._drop_socket()
                try:
                    self._send(message)
                except OSError as err:
                    self._drop_socket()
                    self._report_failure(err)

    def ready(self, status: str | None = None) -> None:
        fields = ["READY=1"]
        if status is not None:
            fields.append(f"STATUS={one_line(status)}")
        self.notify(*fields)

    def reloading(self) -> None:
        self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={one_line(text)}")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for `seconds` more before systemd gives up on start-up (e.g. an engine build)."""
        self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        with self._lock:
            self._drop_socket()

    def _send(self, message: bytes) -> None:
        if self._socket is None:
            self._socket = self._connect()
        self._socket.sendall(message)

    def _connect(self) -> socket.socket:
        address = socket_address(self._notify_socket)
        if address is None:
            raise OSError(errno.EAFNOSUPPORT, "unsupported NOTIFY_SOCKET address")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _report_failure(self, err: OSError) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(level, "cannot notify systemd at NOTIFY_SOCKET=%r: %s", self._notify_socket,
                err.strerror or err)
