"""stylecast-sub: subscribe to a stylecast frame stream to measure, view, serve or record it.

It always measures (received fps, frame age on the same host, seq gaps) and prints: one human
line per second and a summary, or with --json one JSON object per frame and a summary object.
Outputs are plug-ins (stream/outputs/__init__.py's PLUGINS, each one module): --show, --http
(with --control, the daemon's controls on the page), --record, --rtsp, --v4l2, ...; any of them
can be combined, all fed from the one subscription.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from stylecast.core.cli_parser import CommandParser
from stylecast.core.cli_types import positive_int, positive_seconds
from stylecast.core.errors import ConfigError, StylecastError, run_cli
from stylecast.core.sizes import size_text
from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.meters import LatencyWindow
from stylecast.stream.outputs import PLUGINS
from stylecast.stream.outputs.base import Output, OutputContext
from stylecast.stream.security import ClientKeys

PROG = "stylecast-sub"
REPORT_EVERY_S = 1.0
WAIT_SLICE_S = 0.25  # the longest the loop sleeps in one wait: keeps reports and the window live
SUMMARY_AGE_SAMPLES = 100_000
FRAME_FIELDS = ("seq", "frame", "stream", "style", "strength", "smoothing", "width", "height",
                "format", "t_capture_ns", "timing_ms", "dropped")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog=PROG,
        description="Subscribe to a stylecastd frame stream: measure it (fps, frame age, seq "
        "gaps), serve it to browsers, record it, show it, push it to an RTSP server or feed a "
        "virtual webcam (any of these at once). --json prints one JSON object per "
        'line; with --count it ends with a summary line {"frames", "fps", "age_ms_p50", '
        '"age_ms_p95", "gaps"}.',
    )
    parser.add_argument("endpoint", metavar="ENDPOINT", help="e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--topic", default="stylized", choices=["stylized", "raw", "stats"])
    parser.add_argument("--count", type=positive_int, metavar="N", help="stop after N frames")
    parser.add_argument("--timeout", type=positive_seconds, metavar="S",
                        help="exit 1 if no frame arrives for S seconds")
    parser.add_argument("--json", action="store_true", help="one JSON line per frame")
    parser.add_argument("--duration", type=positive_seconds, metavar="S",
                        help="stop S seconds after the first frame (with --record: record S "
                        "seconds, finish the file and exit 0)")
    parser.add_argument("--server-key", type=Path, metavar="FILE",
                        help="CURVE: the daemon's public key file (with --client-key)")
    parser.add_argument("--client-key", type=Path, metavar="FILE",
                        help="CURVE: this client's secret key file (with --server-key)")
    for plugin in PLUGINS:
        plugin.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.server_key is None) != (args.client_key is None):
        parser.error("--server-key and --client-key go together")
    return run_cli(PROG, lambda: consume(args, parser.error))


def consume(args: argparse.Namespace,
            usage_error: Callable[[str], NoReturn] | None = None) -> int:
    curve = None
    if args.server_key is not None:
        curve = ClientKeys.from_files(args.server_key, args.client_key)
    outputs = Outputs.open(args, curve, usage_error)
    completed = False
    try:
        with _sigterm_as_interrupt(), Subscriber(args.endpoint, args.topic,
                                                 curve=curve) as subscriber:
            tally = Tally(subscriber, json_lines=args.json)
            try:
                outputs.start(subscriber)
                receive(subscriber, tally, outputs, args)
            except KeyboardInterrupt:
                pass  # Ctrl-C or SIGTERM: a normal end of a measurement
            except StylecastError:
                if tally.frames:
                    tally.print_summary()
                raise
            tally.print_summary()
        completed = True
    except StylecastError:
        completed = True  # e.g. --timeout: ended on purpose, the recording so far is whole
        raise
    finally:
        outputs.close(completed)
    return 0


def receive(subscriber: Subscriber, tally: Tally, outputs: Outputs,
            args: argparse.Namespace) -> None:
    idle_deadline = None if args.timeout is None else time.monotonic() + args.timeout
    stop_at = None  # --duration: counted from the first frame
    while args.count is None or tally.frames < args.count:
        wait = WAIT_SLICE_S
        if idle_deadline is not None:
            wait = max(0.0, min(wait, idle_deadline - time.monotonic()))
        if stop_at is not None:
            if time.monotonic() >= stop_at:
                return
            wait = max(0.0, min(wait, stop_at - time.monotonic()))
        try:
            frame = subscriber.next(wait)
        except TimeoutError:
            if idle_deadline is not None and time.monotonic() >= idle_deadline:
                raise StylecastError(f"no frame from {args.endpoint} within {args.timeout:g} s"
                                     f"{_handshake_hint(subscriber)}") from None
            frame = None
        if frame is not None and args.duration is not None:
            if stop_at is None:
                stop_at = time.monotonic() + args.duration
            elif time.monotonic() >= stop_at:
                return  # this frame came after the end
        if frame is not None:
            if idle_deadline is not None:
                idle_deadline = time.monotonic() + args.timeout
            tally.add(frame)
            if not outputs.write(frame):
                return  # the window was closed
        elif not outputs.poll():
            return
        tally.report_if_due()


class Tally:
    """Counts and prints: per frame (--json) or per second, and the summary at the end."""

    def __init__(self, subscriber: Subscriber, *, json_lines: bool) -> None:
        self.subscriber = subscriber
        self.json_lines = json_lines
        self.frames = 0
        self.first_ns: int | None = None
        self.last_ns = 0
        self.last: Frame | None = None
        self.ages = LatencyWindow(SUMMARY_AGE_SAMPLES)
        self._interval_ages = LatencyWindow()
        self._interval_frames = 0
        self._next_report = time.monotonic() + REPORT_EVERY_S

    def add(self, frame: Frame) -> None:
        now_ns = time.monotonic_ns()
        age_ms = frame.age_ms
        self.frames += 1
        self.first_ns = now_ns if self.first_ns is None else self.first_ns
        self.last_ns, self.last = now_ns, frame
        self.ages.add(age_ms)
        self._interval_ages.add(age_ms)
        self._interval_frames += 1
        if frame.image is None:  # stats: the object itself is the line
            _print_line(json.dumps(frame.json(), separators=(",", ":")))
        elif self.json_lines:
            _print_line(json.dumps(frame_line(frame, age_ms), separators=(",", ":")))

    def report_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_report:
            return
        self._next_report = max(self._next_report + REPORT_EVERY_S, now)
        if not self.json_lines and self.subscriber.topic != "stats":
            _print_line(self._second_line())
        self._interval_ages = LatencyWindow()
        self._interval_frames = 0

    def summary(self) -> dict[str, Any]:
        stats = self.subscriber.stats()
        seconds = ((self.last_ns - self.first_ns) / 1e9) if self.first_ns else 0.0
        fps = (self.frames - 1) / seconds if self.frames > 1 and seconds > 0 else 0.0
        ages = self.ages.percentiles()
        return {"frames": self.frames, "fps": round(fps, 2), "age_ms_p50": ages["p50"],
                "age_ms_p95": ages["p95"], "gaps": stats["gaps"], "skipped": stats["skipped"],
                "invalid": stats["invalid"], "restarts": stats["restarts"],
                "reconnects": stats["reconnects"], "seconds": round(seconds, 3)}

    def print_summary(self) -> None:
        summary = self.summary()
        if self.json_lines:
            _print_line(json.dumps(summary, separators=(",", ":")))
            return
        _print_line(
            f"summary: {summary['frames']} frames in {summary['seconds']:.1f} s, "
            f"{summary['fps']:.1f} fps, age p50 {_ms(summary['age_ms_p50'])} "
            f"p95 {_ms(summary['age_ms_p95'])}, gaps {summary['gaps']}, skipped "
            f"{summary['skipped']}, invalid {summary['invalid']}, restarts "
            f"{summary['restarts']}, reconnects {summary['reconnects']}")

    def _second_line(self) -> str:
        clock = time.strftime("%H:%M:%S")
        if not self._interval_frames or self.last is None:
            return f"{clock} no frames from {self.subscriber.endpoint}"
        stats, ages, header = self.subscriber.stats(), self._interval_ages.percentiles(), \
            self.last.header
        return (f"{clock} {stats['fps']:5.1f} fps  age p50 {_ms(ages['p50'])} "
                f"p95 {_ms(ages['p95'])}  gaps {stats['gaps']}  skipped {stats['skipped']}  "
                f"{size_text(header['height'], header['width'])} {header['format']} "
                f"{len(self.last.payload) / 1024:.1f} KiB  style {header.get('style')}")


def frame_line(frame: Frame, age_ms: float) -> dict[str, Any]:
    """The --json line of a frame: the header fields of interest, payload size and age."""
    line: dict[str, Any] = {"topic": frame.topic}
    line.update((key, frame.header[key]) for key in FRAME_FIELDS if key in frame.header)
    line["bytes"] = len(frame.payload)
    line["age_ms"] = round(age_ms, 3)
    return line


class Outputs:
    """Where frames go besides the tally: every output plug-in whose flag was given
    (stream/outputs/__init__.py's PLUGINS), each fed from the one subscription."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.started = False
        self._last_header: dict[str, Any] = {}

    @classmethod
    def open(cls, args: argparse.Namespace, curve: ClientKeys | None = None,
             usage_error: Callable[[str], NoReturn] | None = None) -> Outputs:
        """Set up every requested output before subscribing, so mistakes fail at once."""
        outputs = cls()
        context = OutputContext(args.endpoint, args.topic, curve, outputs.last_header,
                                usage_error or _usage_error, PROG)
        try:
            for plugin in PLUGINS:
                output = plugin.open(args, context)
                if output is not None:
                    outputs.outputs.append(output)
            if args.topic == "stats" and outputs.outputs:
                raise ConfigError("outputs (--http, --record, --show, ...) need a frame topic "
                                  "(stylized or raw), not stats")
        except BaseException:
            outputs.close(completed=False)
            raise
        return outputs

    def last_header(self) -> dict[str, Any]:
        return self._last_header

    def start(self, subscriber: Subscriber) -> None:
        for output in self.outputs:
            output.start(subscriber)

    def write(self, frame: Frame) -> bool:
        """Hand `frame` to every output; False when the user ended one (closed the window)."""
        if frame.image is None:
            return True
        self._last_header = frame.header
        return all([output.write(frame) for output in self.outputs])

    def poll(self) -> bool:
        return all([output.poll() for output in self.outputs])

    def close(self, completed: bool) -> None:
        """Close every output, print what each says; the first error is raised after all."""
        failure: BaseException | None = None
        for output in self.outputs:
            try:
                said = output.close(completed)
            except BaseException as err:
                failure = failure or err
                continue
            if said:
                print(said, file=sys.stderr, flush=True)
        if failure is not None:
            raise failure


def _usage_error(message: str) -> NoReturn:
    build_parser().error(message)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends the run like Ctrl-C does: summary printed, recording finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _handshake_hint(subscriber: Subscriber) -> str:
    failures = subscriber.stats()["handshake_failures"]
    if not failures:
        return ""
    return (f" ({failures} failed handshake(s): check --server-key and --client-key, and that "
            "the daemon knows this client's public key)")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _print_line(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
