"""Transport section (issue #9): 640x480 frames over ZeroMQ, stylecast's publisher beside imagezmq.

Both systems send the same bytes (raw rgb24 or JPEG encoded once up front) over tcp on loopback
and over ipc, to 1 subscriber, 8 subscribers, and 8 of which one takes 200 ms a frame. This module
holds the cases, the timing and the figures; benchmarks.transport_peers holds both ends: the
senders, which run here, and the subscribers, each in a worker process of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.common import Section, Target, percentiles
from benchmarks.transport_peers import (
    HEIGHT,
    SLOW_CONSUMER_S,
    WIDTH,
    ImagezmqSender,
    StylecastSender,
    WorkerPool,
)
from stylecast.core.sizes import size_text
from stylecast.stream.protocol import decode_image, encode_image

JPEG_QUALITY = 85  # the daemon's default [publish] jpeg_quality
CAMERA_FPS = 30.0  # the daemon's real rate: the pace of the cases with a slow subscriber
MANY = 8
WINDOW_S = {True: 0.4, False: 3.0}  # measuring time per case: quick, full
WARMUP_TIMEOUT_S = 5.0
LOCAL_TCP = "tcp://127.0.0.1:*"
Sender = StylecastSender | ImagezmqSender

COLUMNS = {
    "system": "system", "mode": "mode", "format": "format", "transport": "via",
    "subscribers": "subs", "slow": "slow", "recv_fps_mean": "delivered/s",
    "recv_fps_min": "min/s", "latency_ms_p50": "lat p50", "latency_ms_p99": "lat p99",
    "slow_recv_fps": "slow/s", "slow_age_ms_p50": "slow age", "mbytes_s": "MB/s",
}
# What a row measures; None where a case failed. handed_fps (frames the sender handed to
# ZeroMQ, most of which a PUB socket drops at its high-water mark) is kept for diagnosis only.
FIGURES = ("recv_fps_mean", "recv_fps_min", "latency_ms_p50", "latency_ms_p95",
           "latency_ms_p99", "slow_recv_fps", "slow_age_ms_p50", "slow_age_ms_p95", "mbytes_s",
           "handed_fps", "paced_fps", "window_s")


@dataclass(frozen=True)
class Frames:
    """Distinct 480x640 photo frames, as rgb24 arrays and as JPEG files encoded once."""

    images: list[np.ndarray]
    jpegs: list[bytes]
    encode_ms: float
    decode_ms: float

    def payloads(self, fmt: str) -> list[Any]:
        return self.jpegs if fmt == "jpeg" else self.images

    def payload_bytes(self, fmt: str) -> float:
        return float(np.mean([memoryview(p).nbytes for p in self.payloads(fmt)]))


def make_frames(count: int = 8) -> Frames:
    """skimage's astronaut (512x512) scaled to 640x640 (nearest), cut into `count` 480-row crops."""
    from skimage.data import astronaut

    photo = astronaut()
    columns = np.arange(WIDTH) * photo.shape[1] // WIDTH
    rows = np.arange(WIDTH) * photo.shape[0] // WIDTH
    scaled = photo[rows][:, columns]
    offsets = np.linspace(0, WIDTH - HEIGHT, count).astype(int)
    images = [np.ascontiguousarray(scaled[top:top + HEIGHT]) for top in offsets]
    start = time.perf_counter()
    jpegs = [bytes(encode_image(image, "jpeg", JPEG_QUALITY)) for image in images]
    encode_ms = (time.perf_counter() - start) * 1e3 / count
    header = {"format": "jpeg", "height": HEIGHT, "width": WIDTH}
    start = time.perf_counter()
    for jpeg in jpegs:
        decode_image(header, jpeg)
    decode_ms = (time.perf_counter() - start) * 1e3 / count
    return Frames(images, jpegs, encode_ms, decode_ms)


# -- cases --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    system: str  # "stylecast" | "imagezmq"
    mode: str  # "pub/sub" | "req/rep"
    fmt: str  # "rgb24" | "jpeg"
    transport: str  # "tcp" | "ipc"
    subscribers: int
    slow: bool  # the last subscriber takes SLOW_CONSUMER_S per frame

    @property
    def paced_fps(self) -> float | None:
        """With a slow subscriber: the camera's rate; otherwise as fast as the sender can."""
        return CAMERA_FPS if self.slow else None

    def jobs(self, endpoint: str) -> list[dict[str, Any]]:
        return [{"system": self.system, "mode": self.mode, "format": self.fmt,
                 "endpoint": endpoint, "slow": self.slow and i == self.subscribers - 1}
                for i in range(self.subscribers)]

    def keys(self) -> dict[str, Any]:
        return {"system": self.system, "mode": self.mode, "format": self.fmt,
                "transport": self.transport, "subscribers": self.subscribers, "slow": self.slow}


def all_cases(quick: bool) -> list[Case]:
    """Every case for each (format, transport); quick mode takes two pairs that between them
    run every format, transport, system and mode."""
    pairs = [("rgb24", "tcp"), ("jpeg", "ipc")] if quick else [
        ("rgb24", "tcp"), ("rgb24", "ipc"), ("jpeg", "tcp"), ("jpeg", "ipc")]
    cases = []
    for fmt, transport in pairs:
        for system in ("stylecast", "imagezmq"):
            for subscribers, slow in ((1, False), (MANY, False), (MANY, True)):
                cases.append(Case(system, "pub/sub", fmt, transport, subscribers, slow))
        # REQ/REP is one sender and one hub per round trip: there are no 8 subscribers
        cases.append(Case("imagezmq", "req/rep", fmt, transport, 1, False))
    return cases


def run_case(case: Case, pool: WorkerPool, frames: Frames, window_s: float,
             endpoint: str) -> dict[str, Any]:
    """One row; any failure (a timeout included) becomes its "error", and fresh workers."""
    row = case.keys() | dict.fromkeys(FIGURES) | {"error": None}
    try:
        row.update(measure(case, pool, frames, window_s, endpoint))
    except Exception as err:
        pool.reset()
        row["error"] = f"{type(err).__name__}: {err}"
    return row


def measure(case: Case, pool: WorkerPool, frames: Frames, window_s: float,
            endpoint: str) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        if case.mode == "req/rep":  # the hub binds, the sender connects to it
            hub_endpoint = pool.arm(case.jobs(endpoint))[0]
            sender = stack.enter_context(open_sender(case, hub_endpoint, frames))
        else:
            sender = stack.enter_context(open_sender(case, endpoint, frames))
            pool.arm(case.jobs(sender.endpoint))
        start = warm_up(sender, pool, case.paced_fps)
        offered, t0, t1 = send_window(sender, case.paced_fps, window_s, start)
        results = pool.stop(t0, t1)
    return figures(case, results, offered, (t1 - t0) / 1e9, frames.payload_bytes(case.fmt))


@contextlib.contextmanager
def open_sender(case: Case, endpoint: str,
                frames: Frames) -> Iterator[Sender]:
    payloads = frames.payloads(case.fmt)
    if case.system == "stylecast":
        sender: Sender = StylecastSender(endpoint, case.fmt, payloads)
    else:
        sender = ImagezmqSender(endpoint, case.fmt, payloads, req_rep=case.mode == "req/rep")
    try:
        yield sender
    finally:
        sender.close()


def warm_up(sender: Sender, pool: WorkerPool, paced_fps: float | None) -> int:
    """Send at the case's pace until every subscriber has had a frame; when the next is due (ns).

    Paced, the window opens one interval after the last warm-up frame, which has arrived by then.
    """
    interval_ns = 0 if paced_fps is None else int(1e9 / paced_fps)
    deadline = time.monotonic_ns() + int(WARMUP_TIMEOUT_S * 1e9)
    next_send = time.monotonic_ns()
    while not pool.all_got_a_frame(max(0, next_send - time.monotonic_ns()) / 1e9):
        now = time.monotonic_ns()
        if now > deadline:
            raise TimeoutError(f"not every subscriber got a frame within {WARMUP_TIMEOUT_S:g} s")
        if now >= next_send:
            sender.send()
            next_send += interval_ns
    return max(next_send, time.monotonic_ns())


def send_window(sender: Sender, paced_fps: float | None, window_s: float,
                t0: int) -> tuple[int, int, int]:
    """Send for window_s from t0 (ns), flat out or at paced_fps; (frames offered, t0, t1)."""
    sleep_until(t0)
    if paced_fps is None:
        offered, end = 0, t0 + int(window_s * 1e9)
        while time.monotonic_ns() < end:
            offered += sender.send()
        return offered, t0, time.monotonic_ns()
    interval_ns = int(1e9 / paced_fps)
    count = round(window_s * paced_fps)
    offered = 0
    for k in range(count):
        sleep_until(t0 + k * interval_ns)
        offered += sender.send()
    end = t0 + count * interval_ns  # the last frame's interval belongs to the window
    sleep_until(end)
    return offered, t0, max(end, time.monotonic_ns())


def sleep_until(t_ns: int) -> None:
    remaining = (t_ns - time.monotonic_ns()) / 1e9
    if remaining > 0:
        time.sleep(remaining)


def figures(case: Case, results: list[dict[str, Any]], offered: int, seconds: float,
            payload_bytes: float) -> dict[str, Any]:
    """The row's figures from what each subscriber got inside the window (the slow one last)."""
    fast, slow = (results[:-1], results[-1:]) if case.slow else (results, [])
    fast_fps = [r["count"] / seconds for r in fast]
    latency = percentiles([ms for r in fast for ms in r["ms"]])
    slow_age = percentiles([ms for r in slow for ms in r["ms"]])
    delivered = sum(r["count"] for r in results)
    return {
        "recv_fps_mean": round(float(np.mean(fast_fps)), 1),
        "recv_fps_min": round(min(fast_fps), 1),
        "latency_ms_p50": round(latency["p50"], 2),
        "latency_ms_p95": round(latency["p95"], 2),
        "latency_ms_p99": round(latency["p99"], 2),
        "slow_recv_fps": round(slow[0]["count"] / seconds, 2) if slow else None,
        "slow_age_ms_p50": round(slow_age["p50"], 1) if slow else None,
        "slow_age_ms_p95": round(slow_age["p95"], 1) if slow else None,
        "mbytes_s": round(delivered * payload_bytes / seconds / 1e6, 1),
        "handed_fps": round(offered / seconds, 1),
        "paced_fps": case.paced_fps,
        "window_s": round(seconds, 3),
    }


# -- the section ----------------------------------------------------------------------------------

def run(quick: bool) -> Section:
    window_s = WINDOW_S[quick]
    cases = all_cases(quick)
    folder = tempfile.mkdtemp(prefix="sc-tr-", dir="/tmp")  # ipc paths must stay short
    try:
        with WorkerPool(MANY) as pool:
            frames = make_frames()
            rows = [run_case(case, pool, frames, window_s, endpoint_for(case, folder, index))
                    for index, case in enumerate(cases)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Section(name="transport",
                   title="Transport: 640x480 frames over ZeroMQ, stylecast vs imagezmq",
                   columns=COLUMNS, rows=rows, notes=notes(frames, rows, quick),
                   targets=targets(rows))


def endpoint_for(case: Case, folder: str, index: int) -> str:
    return LOCAL_TCP if case.transport == "tcp" else f"ipc://{folder}/{index}"


def slow_rows(rows: list[dict[str, Any]], system: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["system"] == system and r["slow"]]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or not denominator else numerator / denominator


def worst(values: list[float | None], pick: Any) -> float:
    """The worst of the measured values; NaN when a case has none (it failed)."""
    if not values or any(v is None for v in values):
        return float("nan")
    return float(pick(values))


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """docs/architecture.md: a consumer that takes 200 ms a frame sees frames no older than ~2 frame
    intervals, and slows neither the daemon nor the other consumers. Every figure is what
    subscribers received, on stylecast's rows, worst row; notes say why so."""
    slow = slow_rows(rows, "stylecast")
    limit_ms = 2 * 1000 / CAMERA_FPS
    own_pace = 1 / SLOW_CONSUMER_S
    age = worst([r["slow_age_ms_p50"] for r in slow], max)
    taken = worst([ratio(r["slow_recv_fps"], own_pace) for r in slow], min)
    others = worst([ratio(r["recv_fps_min"], CAMERA_FPS) for r in slow], min)
    many = [r for r in rows if r["system"] == "stylecast" and r["subscribers"] == MANY
            and not r["slow"]]
    flat_out = worst([r["recv_fps_min"] for r in many], min)
    return [
        Target("200 ms consumer: age of the frame it takes, p50 ms (worst case)",
               f"<= {limit_ms:.1f}", age, age <= limit_ms),
        Target(f"200 ms consumer: frames it takes / its own pace ({own_pace:g}/s) (worst)",
               ">= 0.9", taken, taken >= 0.9),
        Target(f"beside it: slowest other subscriber's delivered fps / {CAMERA_FPS:g} (worst)",
               ">= 0.9", others, others >= 0.9),
        Target(f"{MANY} subscribers flat out: slowest one's delivered fps (worst)",
               f">= {CAMERA_FPS:g}", flat_out, flat_out >= CAMERA_FPS),
    ]


def span(rows: list[dict[str, Any]], key: str) -> str:
    """'low-high' of a figure over rows (one number when they agree; n/a when none has it)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def notes(frames: Frames, rows: list[dict[str, Any]], quick: bool) -> list[str]:
    return method_notes(frames, quick) + contrast_notes(rows)


def method_notes(frames: Frames, quick: bool) -> list[str]:
    from imagezmq import __version__ as imagezmq_version

    slow_ms = SLOW_CONSUMER_S * 1000
    interval_ms = 1000 / CAMERA_FPS
    cases = f"{WINDOW_S[quick]:g} s per case" + (
        " (quick: rgb24 over tcp and JPEG over ipc only)" if quick else "")
    return [
        f"Frames: {len(frames.images)} crops of skimage's astronaut, "
        f"{size_text(HEIGHT, WIDTH)} rgb24 "
        f"({frames.payload_bytes('rgb24') / 1e3:.0f} kB) or JPEG q{JPEG_QUALITY} "
        f"({frames.payload_bytes('jpeg') / 1e3:.0f} kB), encoded once up front with simplejpeg "
        f"({frames.encode_ms:.2f} ms/frame here): both systems send the same bytes, and "
        "encoding is not measured.",
        "stylecast: the daemon's Publisher (XPUB, SNDHWM 2, NOBLOCK, zero-copy) with full v1 "
        f"headers; imagezmq {imagezmq_version}: ImageSender/ImageHub as shipped (HWM 1000), "
        "send time in msg.",
        "Processes: the sender runs in the benchmark's process; every subscriber in a worker "
        "process of its own (multiprocessing spawn, started once), as consumers are separate "
        "programs; all share this machine's cores.",
        "stylecast's fast subscribers are plain SUB sockets set up as the client's reader thread "
        "sets up its own (RCVHWM 2), because Subscriber.next() decodes each JPEG it hands out "
        f"({frames.decode_ms:.2f} ms here) and imagezmq's hub does not; the slow subscriber is "
        "the real stylecast.stream.client.Subscriber: its newest-frame slot is what it shows.",
        f"Timing: {cases}, after every subscriber had a frame. Every rate is delivered: "
        "frames a subscriber received inside that window, per second (delivered/s: mean over "
        "the fast subscribers; min/s: the slowest; slow/s: the slow one); MB/s = payload bytes "
        "delivered to all subscribers. Frames handed to ZeroMQ are not a rate anyone sees "
        "(flat out, a PUB socket drops most at its high-water mark) and are not shown. "
        "Latency = arrival - send time (time.monotonic_ns() on both sides), pooled over the "
        "fast subscribers.",
        f"Pace: 1- and 8-subscriber cases send flat out; cases with a slow subscriber send at "
        f"{CAMERA_FPS:g} fps (the daemon's camera rate), for both systems.",
        f"Slow subscriber: takes a frame, then sleeps {slow_ms:g} ms (a consumer busy elsewhere; "
        "asleep, so the cores stay with the transport); 'slow age' = now - send time when it "
        f"takes the frame. With a newest-frame slot that is the latency plus 0-{interval_ms:.0f} "
        f"ms since the newest frame came; {slow_ms:g} ms being 6 intervals, its phase drifts "
        "slowly, so a short run samples part of that range.",
        f"Targets, on stylecast's rows (worst row), all on what subscribers received: beside "
        f"a 30 fps publisher, the slow consumer's frames are no older than 2 intervals at p50 "
        f"({2 * interval_ms:.1f} ms; {2 * interval_ms + slow_ms:.1f} ms counting its own "
        f"{slow_ms:g} ms) and it gets one each time it asks (>= 0.9 x {1 / SLOW_CONSUMER_S:g}/s), "
        f"while the slowest other subscriber receives >= 0.9 x {CAMERA_FPS:g} fps; flat out, "
        f"each of {MANY} subscribers receives at least the camera's {CAMERA_FPS:g} fps.",
        "imagezmq REQ/REP: one sender, one hub, each frame waits for its reply, so only "
        "1-receiver rows: their rate is the round-trip rate.",
    ]


def contrast_notes(rows: list[dict[str, Any]]) -> list[str]:
    def of(system: str, slow: bool) -> list[dict[str, Any]]:
        return [r for r in rows if r["system"] == system and r["mode"] == "pub/sub"
                and r["subscribers"] == MANY and r["slow"] == slow]

    return [
        f"Contrast, a 200 ms subscriber among 8 at {CAMERA_FPS:g} fps: stylecast's takes frames "
        f"{span(of('stylecast', True), 'slow_age_ms_p50')} ms old (p50), imagezmq's "
        f"{span(of('imagezmq', True), 'slow_age_ms_p50')} ms (its SUB queue keeps every frame, so "
        "it works through a backlog that grows as long as it runs); the 7 others received "
        f"{span(of('stylecast', True), 'recv_fps_min')} (stylecast) and "
        f"{span(of('imagezmq', True), 'recv_fps_min')} (imagezmq) fps at the least.",
        "Contrast, 8 subscribers flat out: latency p50 stylecast "
        f"{span(of('stylecast', False), 'latency_ms_p50')} ms (SNDHWM 2: a subscriber that "
        "falls behind misses frames), imagezmq "
        f"{span(of('imagezmq', False), 'latency_ms_p50')} ms (HWM 1000: frames wait in queues).",
    ]
