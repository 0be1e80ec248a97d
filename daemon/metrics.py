"""The daemon's Prometheus metrics: latency histograms fed per frame, the rest read at scrape time.

Counters, rates and states already live in the running pipeline (its stats, source health,
slots and tunings), so a collector reads them when Prometheus scrapes instead of keeping a
second copy. Latency is the exception: the pipeline keeps only a window of recent samples, so
each frame is also observed into a real histogram (a lock and an add).

Each daemon has a registry of its own, so several daemons in one process never share figures.
A reload (SIGHUP) starts a new pipeline and with it new counts: Prometheus' rate() and
increase() treat that as a counter reset, as after a restart. The histograms live as long as the
process does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stylecast.core.artifact import installed_version

if TYPE_CHECKING:
    from stylecast.daemon.engines.protocol import Engine
    from stylecast.daemon.pipeline import Pipeline

PREFIX = "stylecast"
SOURCE_STATES = ("opening", "running", "reopening", "stalled", "ended")
# What `Pipeline.dropped()` calls each reason (the `dropped` keys of every frame header) -> the
# `reason` label, which has to be read without the header's context.
DROP_REASONS = {"infer": "replaced_before_inference", "publish": "replaced_before_publish",
                "engine": "engine_error", "invalid": "invalid_frame"}
# Seconds. A frame's way through the daemon: a few ms on a fast engine, up to seconds on a Pi.
STAGE_BUCKETS = (0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
# What the daemon adds on top of inference: the project aims at <= 5 ms (p50).
ADDED_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class LatencyHistograms:
    """One histogram per latency the pipeline measures, by its PipelineStats name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def histogram(name: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(f"{PREFIX}_{name}", help_text, buckets=buckets, registry=registry)

        self.by_stats_name = {
            "capture_to_publish": histogram(
                "capture_to_publish_seconds", "Age of each stylized frame when it is published: "
                "from capture to send", STAGE_BUCKETS),
            "infer": histogram("inference_seconds", "Time the engine takes for one frame",
                               STAGE_BUCKETS),
            "added": histogram("added_latency_seconds", "Capture to publish minus inference: "
                               "what the daemon adds (slots, blend, encode, send)",
                               ADDED_BUCKETS),
        }

    def observe(self, name: str, ms: float) -> None:
        """PipelineStats' latency observer: a sample in milliseconds."""
        self.by_stats_name[name].observe(ms / 1000)


class PipelineCollector(Collector):
    """Reads the current pipeline at scrape time; yields nothing while there is none."""

    def __init__(self, current_pipeline: Callable[[], Pipeline | None]) -> None:
        self.current_pipeline = current_pipeline

    def collect(self) -> Iterator[Metric]:
        pipeline = self.current_pipeline()
        if pipeline is None:
            return
        yield from frame_metrics(pipeline)
        yield from source_metrics(pipeline)
        yield from style_metrics(pipeline)
        yield from publish_metrics(pipeline)


def frame_metrics(pipeline: Pipeline) -> Iterator[Metric]:
    stats = pipeline.stats
    frames = CounterMetricFamily(f"{PREFIX}_frames", "Frames through each stage since the "
                                 "pipeline started", labels=["stage"])
    fps = GaugeMetricFamily(f"{PREFIX}_frames_per_second", "Frames per second through each "
                            "stage over the last 2 s", labels=["stage"])
    now = time.monotonic()
    for stage, meter in stats.fps.items():
        frames.add_metric([stage], meter.total)
        fps.add_metric([stage], meter.rate(now))
    dropped = CounterMetricFamily(f"{PREFIX}_frames_dropped", "Frames dropped, by reason",
                                  labels=["reason"])
    for key, count in pipeline.dropped().items():
        dropped.add_metric([DROP_REASONS.get(key, key)], count)
    yield frames
    yield fps
    yield dropped
    yield GaugeMetricFamily(f"{PREFIX}_pipeline_uptime_seconds", "Seconds since the pipeline "
                            "started (at start or on the last reload)", now - stats.started)
    yield GaugeMetricFamily(f"{PREFIX}_paused", "1 while paused (stylecast-ctl pause)",
                            float(pipeline.paused))


def source_metrics(pipeline: Pipeline) -> Iterator[Metric]:
    health = pipeline.health
    current = health.current_state()
    state = GaugeMetricFamily(f"{PREFIX}_source_state", "1 for the state the source is in",
                              labels=["state"])
    for name in SOURCE_STATES:
        state.add_metric([name], float(name == current))
    yield state
    yield CounterMetricFamily(f"{PREFIX}_source_reopens", "Times the source was lost and "
                              "reopened", health.reopens)
    yield CounterMetricFamily(f"{PREFIX}_source_stalls", "Times the source delivered no frame "
                              "within source.stall_timeout_s", health.stalls)
    yield GaugeMetricFamily(f"{PREFIX}_source_last_frame_age_seconds", "Seconds since the "
                            "source last delivered a frame", health.seconds_since_frame())
    info = InfoMetricFamily(f"{PREFIX}_source", "The frame source (passwords redacted)")
    info.add_metric([], {"uri": health.uri})
    yield info


def style_metrics(pipeline: Pipeline) -> Iterator[Metric]:
    """The live style and engine, and every style's strength and smoothing."""
    style, engine = pipeline.styles.live or (pipeline.styles.active_name, None)
    info = InfoMetricFamily(f"{PREFIX}_engine", "The style being run and the engine running it "
                            "(engine 'loading' until the first frame)")
    info.add_metric([], {"style": style, "version": installed_version(),
                         **engine_labels(engine)})
    yield info
    strength = GaugeMetricFamily(f"{PREFIX}_style_strength", "Blend of the stylized picture "
                                 "with the camera's (1 = stylized only)", labels=["style"])
    smoothing = GaugeMetricFamily(f"{PREFIX}_style_smoothing", "Weight of the running average "
                                  "of stylized frames (0 = off)", labels=["style"])
    for name in pipeline.styles.models:
        tuning = pipeline.tunings.of(name)
        strength.add_metric([name], tuning.strength)
        smoothing.add_metric([name], tuning.smoothing)
    yield strength
    yield smoothing


def engine_labels(engine: Engine | None) -> dict[str, str]:
    if engine is None:
        return {"engine": "loading", "runtime": "", "precision": ""}
    description = engine.description
    # Every engine's description starts with its runtime: "onnxruntime CPUExecutionProvider, ..."
    return {"engine": description, "runtime": description.split(" ", 1)[0].lower(),
            "precision": engine.contract.precision}


def publish_metrics(pipeline: Pipeline) -> Iterator[Metric]:
    publisher = pipeline.publisher
    topics = GaugeMetricFamily(
        f"{PREFIX}_topic_subscribed", "1 while at least one consumer subscribes to the topic "
        "(ZeroMQ tells the daemon about topics, not how many subscribers)", labels=["topic"])
    for topic in pipeline.topics():
        topics.add_metric([topic], float(publisher.wanted(topic.encode())))
    yield topics


class DaemonMetrics:
    """One daemon's registry: its latency histograms, its pipeline collector and the process's
    own figures (CPU, memory, open files)."""

    def __init__(self, current_pipeline: Callable[[], Pipeline | None]) -> None:
        self.registry = CollectorRegistry()
        self.latency = LatencyHistograms(self.registry)
        self.registry.register(PipelineCollector(current_pipeline))
        ProcessCollector(registry=self.registry)
