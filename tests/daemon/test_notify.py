"""sd_notify without libsystemd: a real unix datagram socket stands in for systemd's."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

import pytest

from stylecast.daemon.notify import SystemdNotifier

WAIT_S = 10.0


def receiver(address: str) -> socket.socket:
    """A datagram socket like the one systemd listens on; address '\\0name' is abstract."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(WAIT_S)
    return sock


def fields(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


@pytest.fixture
def systemd(tmp_path):
    """(receiving socket, notifier pointed at it) over a socket file in tmp_path."""
    path = tmp_path / "notify"
    sock = receiver(str(path))
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    yield sock, notifier
    notifier.close()
    sock.close()


def test_ready_with_status_is_one_datagram(systemd):
    sock, notifier = systemd
    assert notifier.enabled
    notifier.ready("streaming 30.0 fps\nstyle mosaic")
    assert fields(sock) == ["READY=1", "STATUS=streaming 30.0 fps style mosaic"]
    notifier.ready()
    assert fields(sock) == ["READY=1"]


def test_watchdog_status_stopping_and_extend_timeout(systemd):
    sock, notifier = systemd
    notifier.watchdog()
    assert fields(sock) == ["WATCHDOG=1"]
    notifier.status("building the TensorRT engine\r\n(about 2 minutes)")
    assert fields(sock) == ["STATUS=building the TensorRT engine (about 2 minutes)"]
    notifier.extend_timeout(90.5)
    assert fields(sock) == ["EXTEND_TIMEOUT_USEC=90500000"]
    notifier.stopping()
    assert fields(sock) == ["STOPPING=1"]
    notifier.notify("A=1", "B=2")
    assert sock.recv(4096) == b"A=1\nB=2"


def test_reloading_carries_the_monotonic_clock(systemd):
    sock, notifier = systemd
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading, monotonic = fields(sock)
    assert reloading == "RELOADING=1"
    key, value = monotonic.split("=")
    assert key == "MONOTONIC_USEC" and before <= int(value) <= after


def test_abstract_namespace_socket():
    name = f"stylecast-test-{uuid.uuid4().hex}"
    sock = receiver("\0" + name)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
    try:
        notifier.ready("up")
        assert fields(sock) == ["READY=1", "STATUS=up"]
    finally:
        notifier.close()
        sock.close()


def test_reconnects_when_systemds_socket_is_replaced(tmp_path):
    path = tmp_path / "notify"
    first = receiver(str(path))
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    notifier.watchdog()
    assert fields(first) == ["WATCHDOG=1"]
    first.close()
    path.unlink()
    second = receiver(str(path))  # systemd re-executed: a new socket at the same path
    try:
        notifier.watchdog()
        assert fields(second) == ["WATCHDOG=1"]
    finally:
        notifier.close()
        second.close()


def test_vanished_socket_never_raises_and_warns_once(tmp_path, caplog):
    path = tmp_path / "notify"
    receiver(str(path)).close()
    path.unlink()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.DEBUG, logger="stylecast.daemon.notify"):
        notifier.ready("up")
        notifier.watchdog()
        notifier.stopping()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    notifier.close()


def test_unsupported_address_does_not_raise(caplog):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    with caplog.at_level(logging.WARNING, logger="stylecast.daemon.notify"):
        notifier.ready()
    assert notifier.enabled and "vsock:2:1234" in caplog.text


def test_disabled_without_notify_socket(caplog):
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    with caplog.at_level(logging.DEBUG, logger="stylecast.daemon.notify"):
        notifier.ready("up")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
        notifier.close()
    assert caplog.records == []


def test_reads_os_environ_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = SystemdNotifier()
    assert notifier.enabled and notifier.watchdog_interval_s == 10.0


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "500000"}, 0.25),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_PID": str(os.getpid())}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(environ, interval):
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "/run/systemd/notify", **environ})
    assert notifier.watchdog_interval_s == interval
