"""The pipeline's fault handling, in process: a source that dies, stalls or sends garbage, an
engine that fails on some frames or on every frame. Real threads, real XPUB socket, real SUB.
"""

from __future__ import annotations

import json
import time

import numpy as np
import zmq

from stylecast.daemon.pipeline import PipelineFailure
from stylecast.daemon.sources import SourceError, SourceStalled

from support.pipeline_doubles import (
    ClockedSource,
    FlakyEngine,
    ScriptedSource,
    TimedEngine,
    collect,
    frame,
)


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


def test_stats_name_the_frame_width_and_height(run_pipeline):
    """Frames 25 wide and 14 high: `size` says so by name; the deprecated `frame_size` stays the
    [height, width] list it always was (protocol v1 never changes or removes a key)."""
    wide = np.zeros((14, 25, 3), np.uint8)
    pipeline, sub = run_pipeline(ScriptedSource([wide] * 1000), FlakyEngine())
    deadline = time.monotonic() + 20
    source = {"size": None}
    while source["size"] is None and time.monotonic() < deadline:
        source = json.loads(collect(sub, b"stats", 1)[-1][1])["source"]
    assert source["size"] == {"width": 25, "height": 14}
    assert source["frame_size"] == [14, 25]
    status = pipeline.status()["source"]  # the control socket's `status` reply
    assert (status["size"], status["frame_size"]) == ({"width": 25, "height": 14}, [14, 25])


def inferred(engine: TimedEngine, count: int, timeout_s: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while len(engine.seen) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return engine.seen[:count]


def test_inference_that_fits_a_cameras_interval_takes_every_frame(run_pipeline):
    """Camera every 100 ms, inference 30 ms: the stage is free before each frame comes, so it
    takes each one, in order, and none is replaced in the slot (added latency at a camera's
    rate is then only the hand-over; benchmarks/pipeline.py measures it)."""
    engine = TimedEngine(0.03)
    pipeline, _ = run_pipeline(ClockedSource(0.1), engine)
    assert inferred(engine, 8) == list(range(8))
    assert pipeline.dropped()["infer"] == 0


def test_inference_slower_than_the_camera_takes_the_newest_frame(run_pipeline):
    """Camera every 40 ms, inference 110 ms: the stage never waits for a frame; each time it is
    free it takes the newest one, and the frames that came meanwhile are dropped and counted."""
    engine = TimedEngine(0.11)
    pipeline, _ = run_pipeline(ClockedSource(0.04), engine)
    seen = inferred(engine, 6)
    assert seen == sorted(set(seen)) and seen[-1] - seen[0] > len(seen)  # newest, skipping
    assert pipeline.dropped()["infer"] > 0
