"""Counting full-frame copies on the daemon's hot path, by watching a real pipeline run.

A real Pipeline (its source, its engine loaded by load_engine, its XPUB publisher) is run in
this process with each boundary watched: a buffer that does not share memory with the one the
previous stage handed over is a copy. Boundaries:

    source frame -> ONNX Runtime input    (to_model_input: a uint8 HWC model takes the frame)
    ONNX Runtime output -> engine result  (from_model_output)
    engine result -> ZeroMQ payload       (encode_image: rgb24 is sent zero-copy)

ONNX Runtime's own handling stays out of sight: its CPU provider reads a contiguous numpy input
in place and returns outputs that wrap its own buffers (a PyCapsule base, not a numpy copy).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np
import zmq

BOUNDARIES = ("source->engine input", "engine output->result", "result->zmq payload")
TIMEOUT_S = 60.0


def _shares(buffer: Any, recent: deque) -> bool:
    array = np.frombuffer(buffer, np.uint8) if not isinstance(buffer, np.ndarray) else buffer
    return any(np.shares_memory(array, seen) for seen in recent)


class _WatchedEngine:
    """The loaded engine, with its ONNX Runtime session's run() and its own result watched."""

    def __init__(self, engine: Any, audit: CopyAudit) -> None:
        self._engine, self._audit = engine, audit
        onnx_engine = engine.engine  # FittedEngine -> OnnxEngine
        session_run = onnx_engine.session.run

        def run(names, feed, *args, **kwargs):
            (tensor,) = feed.values()
            audit.check("source->engine input", tensor, audit.captured)
            outputs = session_run(names, feed, *args, **kwargs)
            audit.remember(audit.model_outputs, outputs[0])
            return outputs

        onnx_engine.session.run = run

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        result = self._engine(frame)
        self._audit.check("engine output->result", result, self._audit.model_outputs)
        self._audit.remember(self._audit.results, result)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class CopyAudit:
    def __init__(self, model: Path, source_uri: str, publish_format: str = "rgb24") -> None:
        self.model, self.source_uri, self.publish_format = model, source_uri, publish_format
        self.captured: deque = deque(maxlen=8)
        self.model_outputs: deque = deque(maxlen=8)
        self.results: deque = deque(maxlen=8)
        self.copies: Counter[str] = Counter()
        self.published = 0
        # The capture, inference and publish threads each append to one deque and read another.
        self._lock = threading.Lock()

    def remember(self, recent: deque, buffer: Any) -> None:
        with self._lock:
            recent.append(buffer)

    def check(self, boundary: str, buffer: Any, previous: deque) -> None:
        with self._lock:
            if not _shares(buffer, previous):
                self.copies[boundary] += 1

    def run(self, frames: int) -> dict[str, float]:
        """Copies per published frame at each boundary, over `frames` published frames."""
        from stylecast.daemon.config import load_config
        from stylecast.daemon.engines import load_engine
        from stylecast.daemon.engines.settings import EngineSettings
        from stylecast.daemon.pipeline import Pipeline
        from stylecast.daemon.publisher import Publisher
        from stylecast.daemon.sources import open_source
        from stylecast.daemon.styles import LoadedEngines, StyleBook

        folder = Path(tempfile.mkdtemp(prefix="scc-", dir="/tmp"))
        config = load_config(None, {"source.uri": self.source_uri,
                                    "publish.endpoints": [f"ipc://{folder}/frames"],
                                    "publish.format": self.publish_format})
        context = zmq.Context()
        publisher = Publisher(context, config.publish)
        self._watch_publisher(publisher)
        source = open_source(self.source_uri)
        self._watch_source(source)
        cache = LoadedEngines(lambda *a, **k: _WatchedEngine(load_engine(*a, **k), self))
        styles = StyleBook({"audit": self.model}, "audit", EngineSettings(runtime="onnxruntime"),
                           cache)
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"stylized")
        sub.connect(publisher.endpoints[0])
        pipeline = Pipeline(config, source, styles, publisher)
        try:
            pipeline.start()
            self._receive(sub, frames)
        finally:
            pipeline.stop()
            sub.close(linger=0)
            publisher.close()
            cache.close()
            context.term()
            shutil.rmtree(folder, ignore_errors=True)
        return {b: round(self.copies[b] / self.published, 2) for b in BOUNDARIES}

    def _watch_source(self, source: Any) -> None:
        read = source.read

        def watched_read(timeout_s: float):
            captured = read(timeout_s)
            self.remember(self.captured, captured.image)
            return captured

        source.read = watched_read

    def _watch_publisher(self, publisher: Any) -> None:
        send = publisher.send

        def watched_send(topic: bytes, header: dict, payload: Any) -> None:
            if topic == b"stylized":
                self.check("result->zmq payload", payload, self.results)
                self.published += 1
            send(topic, header, payload)

        publisher.send = watched_send

    def _receive(self, sub: zmq.Socket, frames: int) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while self.published < frames:
            if time.monotonic() > deadline:
                raise RuntimeError(f"copy audit: only {self.published} frames in {TIMEOUT_S} s")
            if sub.poll(100):
                sub.recv_multipart()
