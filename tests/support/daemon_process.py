"""Run a real stylecastd process for tests: its own sockets in a temp folder, a real unix datagram
socket standing in for systemd's NOTIFY_SOCKET, and a plain pyzmq SUB to read what it publishes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

STYLECASTD = Path(sys.executable).with_name("stylecastd")
WAIT_S = 30.0  # generous: the CI machine is a shared 2-core box
SMALL_TEST_SOURCE = "test://?width=64&height=48&fps=30"  # tiny frames at a camera's rate


class NotifyListener:
    """A unix datagram socket that collects sd_notify messages, as systemd would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return self.messages

    def wait_for(self, prefix: str, timeout_s: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            for message in self.drain()[seen:]:
                if any(line.startswith(prefix) for line in message.splitlines()):
                    return message
            seen = len(self.messages)
        raise AssertionError(f"no {prefix!r} notification within {timeout_s} s; got "
                             f"{self.messages}")

    def keep_draining(self) -> None:
        """From now on read notifications on a thread of its own, as systemd does: a queue that
        nobody reads makes the daemon's sd_notify time out, which holds up its main thread (and
        so its control socket) for seconds at a time."""
        self._draining = threading.Thread(target=self._drain_until_closed, daemon=True)
        self._draining.start()

    def _drain_until_closed(self) -> None:
        while self.sock.fileno() != -1:
            try:
                self.drain()
            except OSError:  # closed under us
                return

    def close(self) -> None:
        self.sock.close()
        draining = getattr(self, "_draining", None)
        if draining is not None:
            draining.join(1.0)


@dataclass
class DaemonProcess:
    process: subprocess.Popen
    folder: Path
    publish: str
    control: str
    notify: NotifyListener
    subscribers: list[zmq.Socket] = field(default_factory=list)

    def subscribe(self, *topics: bytes, hwm: int = 100) -> zmq.Socket:
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, hwm)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(self.publish)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.subscribers.append(sub)
        return sub

    def request(self, payload: dict | bytes, timeout_s: float = 10.0) -> dict:
        req = zmq.Context.instance().socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(self.control)
        try:
            req.send(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
            if not req.poll(int(timeout_s * 1000)):
                raise AssertionError(f"no control reply within {timeout_s} s")
            return json.loads(req.recv())
        finally:
            req.close()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = WAIT_S) -> tuple[int, str]:
        try:
            _, err = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
            raise AssertionError(f"stylecastd did not exit within {timeout_s} s: {err}") from None
        return self.process.returncode, err

    def close(self) -> None:
        for sub in self.subscribers:
            sub.close(linger=0)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.communicate()
        self.notify.close()


def start_daemon(folder: Path, *args: str, watchdog_usec: int | None = 1_000_000,
                 publish: str | None = None) -> DaemonProcess:
    """stylecastd with ipc endpoints in `folder` (short path: ipc paths max 107 chars)."""
    folder.mkdir(parents=True, exist_ok=True)
    publish = publish or f"ipc://{folder}/frames"
    control = f"ipc://{folder}/control"
    notify = NotifyListener(folder / "notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    command = [str(STYLECASTD), "--publish", publish, "--control", control, *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    return DaemonProcess(process, folder, publish, control, notify)


def receive(sub: zmq.Socket, timeout_s: float = WAIT_S) -> tuple[bytes, dict, bytes]:
    if not sub.poll(int(timeout_s * 1000)):
        raise AssertionError(f"nothing received within {timeout_s} s")
    topic, header, payload = sub.recv_multipart()
    return topic, json.loads(header), payload
