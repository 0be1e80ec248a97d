"""In-process pipeline harness: scripted sources, a flaky engine, and a `run_pipeline` starter
over a real XPUB socket and a real SUB (the fixture of the same name in conftest.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from stylecast.daemon.config import load_config
from stylecast.daemon.engines.settings import EngineSettings
from stylecast.daemon.pipeline import Pipeline
from stylecast.daemon.publisher import Publisher
from stylecast.daemon.sources import Captured, FrameSource, SourceError
from stylecast.daemon.styles import LoadedEngines, StyleBook

from support.contracts import make_contract


class ScriptedSource(FrameSource):
    """Frames from a script: an ndarray is a frame, an exception is raised from read()."""

    def __init__(self, script, *, fail_opens: int = 0) -> None:
        super().__init__("scripted://")
        self.script = list(script)
        self.fail_opens = fail_opens
        self.opens = 0
        self.closes = 0
        self.lock = threading.Lock()

    @property
    def description(self) -> str:
        return "scripted frames"

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.fail_opens:
            raise SourceError("camera not there yet")

    def read(self, timeout_s: float) -> Captured:
        time.sleep(0.01)
        with self.lock:
            step = self.script.pop(0) if self.script else np.zeros((8, 8, 3), np.uint8)
        if isinstance(step, Exception):
            raise step
        return Captured.now(step)

    def close(self) -> None:
        self.closes += 1


class FlakyEngine:
    """255 - x, but raises on the frames whose top-left pixel is in `fail_on`."""

    description = "flaky test engine"

    def __init__(self, fail_on=(), always=False) -> None:
        self.contract = make_contract(style="flaky")
        self.fail_on = set(fail_on)
        self.always = always

    def __call__(self, frame):
        if self.always or int(frame[0, 0, 0]) in self.fail_on:
            raise RuntimeError("engine hiccup")
        return 255 - frame

    def close(self):
        pass


class ClockedSource(FrameSource):
    """A camera on its own clock: frame k (pixel value k % 256) is captured at start + k * interval,
    whenever it is read."""

    def __init__(self, interval_s: float) -> None:
        super().__init__("clocked://")
        self.interval_s = interval_s
        self._start: float | None = None
        self._index = 0

    @property
    def description(self) -> str:
        return f"clocked frames every {self.interval_s * 1000:g} ms"

    def open(self) -> None:
        self._start, self._index = time.monotonic(), 0

    def read(self, timeout_s: float) -> Captured:
        due = self._start + self._index * self.interval_s
        time.sleep(max(0.0, due - time.monotonic()))
        image = frame(self._index % 256)
        self._index += 1
        return Captured.now(image)

    def close(self) -> None:
        pass


class TimedEngine(FlakyEngine):
    """255 - x after sleeping `infer_s`; remembers the value of every frame it was given."""

    def __init__(self, infer_s: float) -> None:
        super().__init__()
        self.infer_s = infer_s
        self.seen: list[int] = []

    def __call__(self, image):
        self.seen.append(int(image[0, 0, 0]))
        time.sleep(self.infer_s)
        return super().__call__(image)


def frame(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, np.uint8)


def pipeline_runner():
    """Yields start(source, engine, **config overrides) -> (Pipeline, SUB); then stops all."""
    folder = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    context = zmq.Context()
    running = []

    def start(source, engine, **config):
        overrides = {"publish.endpoints": [f"ipc://{folder}/frames"],
                     "source.reopen_backoff_s": 0.01, "source.stall_timeout_s": 0.5,
                     "publish.stats_interval_s": 0.1, **config}
        settings = load_config(None, overrides)
        cache = LoadedEngines(lambda *a, **k: engine)
        styles = StyleBook({"flaky": folder / "unused.onnx"}, "flaky", EngineSettings(), cache)
        publisher = Publisher(context, settings.publish)
        sub = context.socket(zmq.SUB)
        sub.connect(publisher.endpoints[0])
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        time.sleep(0.2)  # let the subscription reach the XPUB before frames flow
        pipeline = Pipeline(settings, source, styles, publisher)
        pipeline.start()
        running.append((pipeline, publisher, sub))
        return pipeline, sub

    yield start
    for pipeline, publisher, sub in running:
        pipeline.stop()
        publisher.close()
        sub.close(linger=0)
    context.destroy(linger=0)
    shutil.rmtree(folder, ignore_errors=True)


def collect(sub, topic: bytes, count: int, timeout_s: float = 20.0) -> list[tuple[dict, bytes]]:
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        if sub.poll(100):
            t, header, payload = sub.recv_multipart()
            if t == topic:
                got.append((json.loads(header), payload))
    assert len(got) == count, f"only {len(got)} of {count} {topic} messages"
    return got
