"""The running pipeline: capture -> infer -> publish, one thread each, newest-wins slots between.

    source --(frame slot)--> infer (engine) --(publish slots)--> publish (encode, send)

Engines, OpenCV and zmq release the GIL, so the stages overlap. A slow stage drops frames (counted
per stage) instead of building a queue, so latency stays bounded. Every message carries the
stage timestamps. Faults are handled where they happen: a failing source is reopened with
backoff, a frame the engine fails on is skipped; what cannot be handled (the engine failing
frame after frame, a source that never comes back) is recorded in `failure` for the supervisor,
which exits non-zero.

A source whose frame size changes mid-stream (a camera reconnecting in another mode) is not an
error: each frame is stylized and published at its own size (the engine fits it to the model,
see engines/frame_fit, and every header carries its frame's width and height); the change is
logged as a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylecast.core.errors import StylecastError
from stylecast.core.sizes import size_json, size_text
from stylecast.daemon.config import DaemonConfig, StyleTuning
from stylecast.daemon.frame_mix import FrameMixer
from stylecast.daemon.publisher import Publisher
from stylecast.daemon.slots import LatestSlots
from stylecast.daemon.sources import (
    Captured,
    FrameSource,
    SourceEnded,
    SourceError,
    SourceStalled,
    redact,
)
from stylecast.daemon.stats import LatencyObserver, PipelineStats
from stylecast.daemon.styles import StyleBook
from stylecast.daemon.tuning import StyleTunings
from stylecast.stream.protocol import (
    RAW,
    STATS,
    STYLIZED,
    dump_json,
    encode_image,
    frame_header,
    stats_header,
)

log = logging.getLogger(__name__)

FRAME = "frame"
POLL_S = 0.05


class PipelineFailure(StylecastError):
    """The pipeline cannot go on (exit 1, so systemd restarts the service)."""


@dataclass(frozen=True)
class SourceFrame:
    index: int  # frames delivered by the source since the pipeline started
    image: np.ndarray
    t_capture_ns: int
    t_capture_unix_ns: int


@dataclass(frozen=True)
class StylizedFrame:
    source: SourceFrame
    image: np.ndarray
    style: str
    t_infer_start_ns: int
    t_infer_end_ns: int
    tuning: StyleTuning  # the strength and smoothing it was made with
    t_mix_end_ns: int  # strength and smoothing applied


class SourceHealth:
    """What the capture stage knows about its source, for stats and the supervisor."""

    def __init__(self, uri: str, stall_timeout_s: float = float("inf")) -> None:
        self.uri = uri
        self.stall_timeout_s = stall_timeout_s
        self.state = "opening"  # opening | running | reopening | stalled | ended
        self.reopens = 0
        self.stalls = 0
        self.last_error: str | None = None
        self.last_frame_at = time.monotonic()  # the start counts as "fresh"
        self.reading_since: float | None = None
        self.frame_size: tuple[int, int] | None = None

    def seconds_since_frame(self) -> float:
        return time.monotonic() - self.last_frame_at

    def current_state(self) -> str:
        """`state`, except "stalled" already while a read has been blocked for longer than the
        stall timeout (a driver that hangs inside read() never gets to raise SourceStalled)."""
        since = self.reading_since
        if (self.state == "running" and since is not None
                and time.monotonic() - since > self.stall_timeout_s):
            return "stalled"
        return self.state

    def as_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "state": self.current_state(), "reopens": self.reopens,
                "stalls": self.stalls, "last_error": self.last_error,
                "size": size_json(*self.frame_size) if self.frame_size else None,
                # Deprecated, [height, width]: protocol v1 never removes a key.
                "frame_size": list(self.frame_size) if self.frame_size else None,
                "seconds_since_frame": round(self.seconds_since_frame(), 3)}


def valid_frame(image: Any) -> bool:
    return (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3 and image.shape[0] > 0 and image.shape[1] > 0)


class Pipeline:
    """The three stage threads of one configuration."""

    def __init__(self, config: DaemonConfig, source: FrameSource, styles: StyleBook,
                 publisher: Publisher, *, latency_observer: LatencyObserver | None = None) -> None:
        self.config = config
        self.source = source
        self.styles = styles
        self.publisher = publisher
        self.tunings = StyleTunings(config.style_tunings())
        self.mixer = FrameMixer()
        self.stats = PipelineStats(latency_observer)
        # Stats are public: no passwords in the URI.
        self.health = SourceHealth(redact(source.uri), config.source.stall_timeout_s)
        self.frames = LatestSlots()  # capture -> infer
        self.outbox = LatestSlots()  # capture/infer -> publish, one slot per topic
        self.paused = False
        self.engine_notify = None  # called every few seconds while an engine builds
        self.failure: StylecastError | None = None
        self.finished = threading.Event()  # a finite source ended and everything was published
        self.first_published = threading.Event()
        self._stop = threading.Event()
        self._capture_done = threading.Event()
        self._infer_done = threading.Event()
        self._seq = {STYLIZED: 0, RAW: 0, STATS: 0}
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, first: Captured | None = None) -> None:
        if first is not None:
            self._accept(first)
        for name, target in (("capture", self._capture_loop), ("infer", self._infer_loop),
                             ("publish", self._publish_loop)):
            thread = threading.Thread(target=self._guarded, args=(target,),
                                      name=f"stylecast-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 1.5) -> None:
        self._stop.set()
        self.frames.close()
        self.outbox.close()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Closing a capture while its thread is still inside read() can crash native camera code:
        # a hung reader is left to die with the process.
        if not any(t.name == "stylecast-capture" and t.is_alive() for t in self._threads):
            self.source.close()

    def fail(self, error: StylecastError) -> None:
        if self.failure is None:
            self.failure = error
        self._stop.set()

    def _guarded(self, loop) -> None:
        try:
            loop()
        except StylecastError as err:
            self.fail(err)
        except Exception as err:  # a bug: exit 1 with the cause in the journal
            log.exception("%s stage crashed", threading.current_thread().name)
            self.fail(PipelineFailure(f"{threading.current_thread().name} crashed: "
                                      f"{type(err).__name__}: {err}"))

    # --- capture -----------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        settings = self.config.source
        backoff = settings.reopen_backoff_s
        is_open = self.health.state == "running"
        while not self._stop.is_set():
            if not is_open:
                is_open = self._open_source()
                if not is_open:
                    self._check_give_up()
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, settings.reopen_backoff_max_s)
                    continue
            if self.source.on_demand and not self.frames.wait_wanted(FRAME, POLL_S):
                continue
            try:
                self.health.reading_since = time.monotonic()
                captured = self.source.read(settings.stall_timeout_s)
            except SourceEnded:
                self.health.state = "ended"
                break
            except SourceError as err:
                self._close_lost_source(err)
                is_open = False
                self._check_give_up()
                continue
            finally:
                self.health.reading_since = None
            if self._accept(captured):
                backoff = settings.reopen_backoff_s
        self._capture_done.set()

    def _open_source(self) -> bool:
        try:
            self.source.open()
        except SourceError as err:
            self.health.state = "reopening"
            self.health.last_error = str(err)
            log.warning("%s; retrying", err)
            return False
        self.health.state = "running"
        log.info("source open: %s", self.source.description)
        return True

    def _close_lost_source(self, err: SourceError) -> None:
        stalled = isinstance(err, SourceStalled)
        if stalled:
            self.health.stalls += 1
        self.health.reopens += 1
        self.health.state = "stalled" if stalled else "reopening"
        self.health.last_error = str(err)
        log.warning("%s: %s; reopening", "stalled" if stalled else "failed", err)
        self.source.close()

    def _check_give_up(self) -> None:
        limit = self.config.source.give_up_after_s
        silent = time.monotonic() - self.health.last_frame_at
        if limit and silent > limit:
            raise PipelineFailure(f"source {self.health.uri}: no frame for {silent:.0f} s "
                                  f"(source.give_up_after_s = {limit:g}): "
                                  f"{self.health.last_error}")

    def _accept(self, captured: Captured) -> bool:
        if not valid_frame(captured.image):
            self.stats.count("invalid")
            shape = getattr(captured.image, "shape", None)
            log.debug("skipped an invalid frame: %s %s",
                      getattr(captured.image, "dtype", type(captured.image)), shape)
            return False
        size = captured.image.shape[:2]
        if self.health.frame_size is not None and size != self.health.frame_size:
            # Deliberate: such a frame is stylized and published at its own size (the engine
            # fits it to what the model takes, and headers carry each frame's width and height).
            log.warning("source frame size changed from %s to %s",
                        size_text(*self.health.frame_size), size_text(*size))
        self.health.state = "running"
        self.health.last_frame_at = time.monotonic()
        self.health.frame_size = size
        frame = SourceFrame(self.stats.fps["capture"].total, captured.image,
                            captured.t_capture_ns, captured.t_capture_unix_ns)
        self.stats.fps["capture"].tick()
        self.frames.put(FRAME, frame)
        if self.config.publish.raw:
            self.outbox.put(RAW, frame)
        return True

    # --- inference ---------------------------------------------------------------------------

    def _infer_loop(self) -> None:
        failures_in_a_row = 0
        limit = self.config.faults.max_engine_errors
        while not self._stop.is_set():
            frame = self.frames.take(FRAME, POLL_S)
            if frame is None:
                if self._capture_done.is_set():
                    break
                continue
            if self.paused:
                self.mixer.reset()  # no running average across a pause
                continue
            if self.styles.live is None:  # the engine is built for the camera's frame size
                self.styles.start(frame.image.shape[:2], self.config.styles.preload,
                                  self.engine_notify)
            style, engine = self.styles.live
            start = time.monotonic_ns()
            try:
                image = engine(frame.image)
            except Exception as err:  # one bad frame must not stop the stream
                failures_in_a_row += 1
                self.stats.count("engine_errors")
                log.warning("engine failed on frame %d (%d in a row): %s", frame.index,
                            failures_in_a_row, err)
                if failures_in_a_row >= limit:
                    raise PipelineFailure(
                        f"engine {engine.description} failed on {failures_in_a_row} frames in a "
                        f"row (faults.max_engine_errors = {limit}); last error: {err}") from None
                continue
            end = time.monotonic_ns()
            failures_in_a_row = 0
            self.stats.fps["infer"].tick()
            self.stats.add_latency("infer", (end - start) / 1e6)
            self.outbox.put(STYLIZED, self._tuned(frame, image, style, start, end))
        self._infer_done.set()

    def _tuned(self, frame: SourceFrame, image: np.ndarray, style: str, start: int,
               end: int) -> StylizedFrame:
        """The engine's output with the style's strength and smoothing as they are now."""
        tuning = self.tunings.of(style)
        image = self.mixer.apply(image, frame.image, tuning, style)
        return StylizedFrame(frame, image, style, start, end, tuning, time.monotonic_ns())

    # --- publishing --------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        interval = self.config.publish.stats_interval_s
        next_stats = time.monotonic() + interval
        while not self._stop.is_set():
            wait = min(POLL_S, max(0.0, next_stats - time.monotonic()))
            items = self.outbox.take_all(wait)
            self.publisher.poll_subscriptions()
            for topic, item in items.items():
                self._publish_frame(topic, item)
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + interval
                self._publish_stats()
            if not items and self._infer_done.is_set():
                self.finished.set()
                break

    def _publish_frame(self, topic: bytes, item: SourceFrame | StylizedFrame) -> None:
        source = item.source if isinstance(item, StylizedFrame) else item
        if topic == STYLIZED:
            self.stats.fps["publish"].tick()
        if not self.publisher.wanted(topic):
            self._published(topic, source, item)
            return
        settings = self.config.publish
        encode_start = time.monotonic_ns()
        payload = encode_image(item.image, settings.format, settings.jpeg_quality)
        now = time.monotonic_ns()
        header = self._frame_header(topic, item, source, encode_start, now)
        self.publisher.send(topic, header, payload)
        self._published(topic, source, item)

    def _published(self, topic: bytes, source: SourceFrame, item: Any) -> None:
        if topic != STYLIZED:
            return
        total_ms = (time.monotonic_ns() - source.t_capture_ns) / 1e6
        infer_ms = (item.t_infer_end_ns - item.t_infer_start_ns) / 1e6
        self.stats.add_latency("capture_to_publish", total_ms)
        self.stats.add_latency("added", total_ms - infer_ms)
        self.first_published.set()

    def _frame_header(self, topic: bytes, item: Any, source: SourceFrame, encode_start: int,
                      now: int) -> dict[str, Any]:
        self._seq[topic] += 1
        height, width = item.image.shape[:2]
        timing = {"encode": (now - encode_start) / 1e6,
                  "total": (now - source.t_capture_ns) / 1e6}
        stylized = isinstance(item, StylizedFrame)
        if stylized:
            timing.update(queue_infer=(item.t_infer_start_ns - source.t_capture_ns) / 1e6,
                          infer=(item.t_infer_end_ns - item.t_infer_start_ns) / 1e6,
                          mix=(item.t_mix_end_ns - item.t_infer_end_ns) / 1e6,
                          queue_publish=(encode_start - item.t_mix_end_ns) / 1e6)
        return frame_header(
            seq=self._seq[topic], frame=source.index, stream=self.config.publish.stream,
            t_capture_ns=source.t_capture_ns, t_capture_unix_ns=source.t_capture_unix_ns,
            t_publish_ns=now, width=width, height=height, fmt=self.config.publish.format,
            style=item.style if stylized else None, timing_ms=timing, dropped=self.dropped(),
            strength=item.tuning.strength if stylized else None,
            smoothing=item.tuning.smoothing if stylized else None)

    def _publish_stats(self) -> None:
        if not self.publisher.wanted(STATS):
            return
        self._seq[STATS] += 1
        header = stats_header(seq=self._seq[STATS], stream=self.config.publish.stream,
                              t_publish_ns=time.monotonic_ns())
        self.publisher.send(STATS, header, dump_json(self.status()))

    # --- figures -----------------------------------------------------------------------------

    def dropped(self) -> dict[str, int]:
        counts = self.stats.counts()
        return {"infer": self.frames.drops(FRAME), "publish": self.outbox.drops(STYLIZED),
                "engine": counts.get("engine_errors", 0), "invalid": counts.get("invalid", 0)}

    def status(self) -> dict[str, Any]:
        style, engine = self.styles.live or (self.styles.active_name, None)
        snapshot = self.stats.snapshot()
        snapshot.pop("counts")
        tuning = self.tunings.of(style)
        return {**snapshot, "dropped": self.dropped(), "source": self.health.as_dict(),
                "style": style, "strength": tuning.strength, "smoothing": tuning.smoothing,
                "engine": engine.description if engine else "loading", "paused": self.paused,
                "topics": self.topics(), "subscriptions": self.publisher.subscriptions()}

    def topics(self) -> list[str]:
        """The topics this daemon publishes (to whoever subscribes)."""
        return [topic.decode() for topic in (STYLIZED, RAW, STATS)
                if topic != RAW or self.config.publish.raw]
