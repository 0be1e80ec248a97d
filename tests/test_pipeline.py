"""The pipeline's fault handling, in process: a source that dies, stalls or sends garbage, an
engine that fails on some frames or on every frame. Real threads, real XPUB socket, real SUB.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from contracts import make_contract

from stylecast.daemon.config import load_config
from stylecast.daemon.engines.settings import EngineSettings
from stylecast.daemon.pipeline import Pipeline, PipelineFailure
from stylecast.daemon.publisher import Publisher
from stylecast.daemon.sources import Captured, FrameSource, SourceError, SourceStalled
from stylecast.daemon.styles import EngineCache, StyleBook


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


def frame(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, np.uint8)


@pytest.fixture
def run_pipeline():
    folder = Path(tempfile.mkdtemp(prefix="sc-", dir="/tmp"))
    context = zmq.Context()
    running = []

    def start(source, engine, **config):
        overrides = {"publish.endpoints": [f"ipc://{folder}/frames"],
                     "source.reopen_backoff_s": 0.01, "source.stall_timeout_s": 0.5,
                     "publish.stats_interval_s": 0.1, **config}
        settings = load_config(None, overrides)
        cache = EngineCache(lambda *a, **k: engine)
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


def test_a_source_that_dies_is_reopened_and_the_stream_goes_on(run_pipeline):
    script = [frame(1), frame(2), SourceError("USB cable pulled"), frame(3), frame(4),
              SourceStalled("no frame in 0.5 s"), frame(5)]
    source = ScriptedSource(script, fail_opens=2)
    pipeline, sub = run_pipeline(source, FlakyEngine())
    values = set()
    deadline = time.monotonic() + 20
    while not {254, 253, 252, 251, 250} <= values and time.monotonic() < deadline:
        for _, payload in collect(sub, b"stylized", 1):
            values.add(payload[0])
    assert {254, 253, 252, 251, 250} <= values
    health = pipeline.health.as_dict()
    assert health["reopens"] == 2 and health["stalls"] == 1
    assert source.opens == 2 + 3  # two failed opens at start, then one after each failure
    assert "no frame" in health["last_error"]
    stats = [json.loads(p) for _, p in collect(sub, b"stats", 1)]
    assert stats[0]["source"]["reopens"] == 2 and stats[0]["source"]["stalls"] == 1
    assert pipeline.failure is None


def test_garbage_frames_are_skipped_and_counted(run_pipeline):
    script = [frame(10), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
              np.zeros((0, 8, 3), np.uint8), "not an array", frame(11)]
    pipeline, sub = run_pipeline(ScriptedSource(script), FlakyEngine())
    seen = set()
    deadline = time.monotonic() + 20
    while 244 not in seen and time.monotonic() < deadline:
        seen |= {p[0] for _, p in collect(sub, b"stylized", 1)}
    assert {245, 244} <= seen
    assert pipeline.dropped()["invalid"] == 4
    assert pipeline.failure is None


def test_an_engine_error_skips_only_that_frame(run_pipeline):
    script = [frame(v) for v in range(20, 30)]
    pipeline, sub = run_pipeline(ScriptedSource(script), FlakyEngine(fail_on={22, 25}))
    values = set()
    deadline = time.monotonic() + 20
    while 255 - 29 not in values and time.monotonic() < deadline:
        values |= {p[0] for _, p in collect(sub, b"stylized", 1)}
    assert 255 - 22 not in values and 255 - 25 not in values
    assert 255 - 29 in values
    assert pipeline.dropped()["engine"] == 2
    assert pipeline.failure is None


def test_an_engine_failing_on_every_frame_fails_the_pipeline(run_pipeline):
    pipeline, _ = run_pipeline(ScriptedSource([]), FlakyEngine(always=True),
                               **{"faults.max_engine_errors": 5})
    deadline = time.monotonic() + 20
    while pipeline.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert isinstance(pipeline.failure, PipelineFailure)
    assert "5 frames in a row" in str(pipeline.failure)
    assert pipeline.failure.exit_code == 1


def test_a_source_that_never_returns_gives_up_when_configured(run_pipeline):
    source = ScriptedSource([], fail_opens=10**6)
    pipeline, _ = run_pipeline(source, FlakyEngine(), **{"source.give_up_after_s": 0.5})
    deadline = time.monotonic() + 20
    while pipeline.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pipeline.failure is not None and "give_up_after_s" in str(pipeline.failure)
    assert "camera not there yet" in str(pipeline.failure)


def test_topics_nobody_subscribes_to_are_not_encoded(run_pipeline, monkeypatch):
    """XPUB tells the publisher who listens: with only `stats` wanted, frames are not encoded."""
    import stylecast.daemon.pipeline as pipeline_module

    encoded = []
    real_encode = pipeline_module.encode_image
    monkeypatch.setattr(pipeline_module, "encode_image",
                        lambda image, *a: encoded.append(1) or real_encode(image, *a))
    pipeline, sub = run_pipeline(ScriptedSource([]), FlakyEngine(), **{"publish.raw": True})
    sub.setsockopt(zmq.UNSUBSCRIBE, b"")
    sub.setsockopt(zmq.SUBSCRIBE, b"stats")
    time.sleep(0.3)
    encoded.clear()
    before = pipeline.stats.fps["publish"].total
    time.sleep(0.5)
    while sub.poll(0):  # stats sent before the subscription change
        sub.recv_multipart()
    stats = json.loads(collect(sub, b"stats", 1)[-1][1])
    assert pipeline.failure is None, pipeline.failure
    assert pipeline.stats.fps["publish"].total > before  # frames kept flowing through
    assert encoded == []
    assert stats["subscriptions"] == ["stats"]
