"""Watching a running stylecastd from outside, for the reliability and soak tests: its control
`status` reply and its process figures (RSS, open files), sampled from a background thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import psutil

from support.daemon_process import WAIT_S, DaemonProcess


def free_tcp_endpoint() -> str:
    """A loopback tcp endpoint on a port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@dataclass(frozen=True)
class Sample:
    """One look at the daemon from outside: its status reply and its process figures."""

    t: float  # time.monotonic() when taken
    rss_mb: float
    open_fds: int
    status: dict

    @property
    def published(self) -> int:
        """Stylized frames through the publish stage (sent or not)."""
        return self.status["frames"]["publish"]

    @property
    def inferred(self) -> int:
        return self.status["frames"]["infer"]

    @property
    def dropped(self) -> int:
        return sum(self.status["dropped"].values())


class DaemonWatch:
    """Samples a daemon every `every_s` from a background thread while a test drives consumers.

    It also drains the daemon's NOTIFY_SOCKET: a full notify queue makes every sd_notify send in
    the daemon wait out its timeout, which would slow the control socket down (not what these
    tests look at). Only this thread touches `daemon.notify` while the watch runs.
    """

    def __init__(self, daemon: DaemonProcess, every_s: float = 0.5) -> None:
        self.daemon = daemon
        self.every_s = every_s
        self.process = psutil.Process(daemon.process.pid)
        self.samples: list[Sample] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="daemon-watch")

    def sample(self) -> Sample:
        self.daemon.notify.drain()
        status = self.daemon.request({"cmd": "status"})
        assert status["ok"], status
        return Sample(time.monotonic(), self.process.memory_info().rss / 2**20,
                      self.process.num_fds(), status)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.daemon.process.poll() is not None:
                    raise AssertionError(f"stylecastd exited with {self.daemon.process.poll()}")
                self.samples.append(self.sample())
                self._stop.wait(self.every_s)
        except BaseException as err:
            self.error = err

    def __enter__(self) -> DaemonWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)
        if self.error is not None and exc_info[0] is None:
            raise AssertionError(f"watching the daemon failed: {self.error}") from self.error

    def after(self, warm_up_s: float) -> list[Sample]:
        """The samples taken once the first `warm_up_s` seconds of the watch were over."""
        start = self.samples[0].t + warm_up_s
        return [s for s in self.samples if s.t >= start]
