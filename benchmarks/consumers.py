"""Consumers section (issue #21): what each viewer of `stylecast-sub` costs, MJPEG against
WebRTC, at 640x480, and how old a frame is when it gets there.

A real stylecastd publishes the test card at 30 fps (rgb24, through a pass-through model so
that inference costs next to nothing and leaves the cores to the consumers); a real
`stylecast-sub ENDPOINT --http 127.0.0.1:0`, then `--webrtc 127.0.0.1:0`, serves it; N real
viewers (benchmarks.consumer_viewers, a process of their own) receive it. Each row is one N for
one output: the stylecast-sub process's CPU over the window, and per viewer the frames and bytes
received. Frame age has rows of its own, one viewer each: an HTTP client for MJPEG (arrival
less capture, by the X-Stylecast-Seq of each part), headless Chromium for WebRTC (the page's
own measurement, display less capture; benchmarks.consumer_browser).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psutil
import zmq

from benchmarks.common import Section, percentiles
from benchmarks.consumer_browser import missing as browser_missing
from benchmarks.pipeline import stylecastd

WIDTH, HEIGHT, CAMERA_FPS = 640, 480, 30.0
SOURCE = f"test://?width={WIDTH}&height={HEIGHT}&fps={CAMERA_FPS:g}"
ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0  # a process's first frame or first line: imports are slow on busy cores
READY_TIMEOUT_S = 60.0  # every viewer connected and has had a frame
STOP_TIMEOUT_S = 15.0
SERVING = re.compile(r"serving (?:WebRTC at )?(http://\S+/)")


@dataclass(frozen=True)
class Durations:
    settle_s: float  # after every viewer has had a frame: WebRTC's bitrate finds its level
    window_s: float
    viewers: tuple[int, ...]
    browser: bool


QUICK = Durations(settle_s=0.3, window_s=1.0, viewers=(0, 1, 2), browser=False)
FULL = Durations(settle_s=3.0, window_s=6.0, viewers=(0, 1, 2, 4), browser=True)

COLUMNS = {
    "output": "output", "viewer": "viewer", "viewers": "N", "codec": "codec",
    "sub_cpu_pct": "sub CPU%", "cpu_pct_per_viewer": "CPU%/viewer", "fps_mean": "fps/viewer",
    "fps_min": "min fps", "mbit_s": "Mbit/s/viewer", "age_ms_p50": "age p50",
    "age_ms_p95": "age p95", "viewers_cpu_pct": "viewers CPU%", "host_cpu_pct": "host CPU%",
}
FIGURES = ("codec", "size", "sub_cpu_pct", "cpu_pct_per_viewer", "fps_mean", "fps_min",
           "mbit_s", "mbit_s_total", "age_ms_p50", "age_ms_p95", "ages", "viewers_cpu_pct",
           "host_cpu_pct", "daemon_cpu_pct", "window_s")


@dataclass(frozen=True)
class Case:
    output: str  # "mjpeg" (--http) | "webrtc" (--webrtc)
    viewer: str  # "http client" | "aiortc" | "chromium"
    viewers: int
    age: bool = False  # a frame-age row

    def keys(self) -> dict[str, Any]:
        return {"output": self.output, "viewer": self.viewer, "viewers": self.viewers,
                "age": self.age}


def cases(output: str, durations: Durations) -> list[Case]:
    """0 viewers (the subscription alone) up to the most, then the frame-age row."""
    viewer = "http client" if output == "mjpeg" else "aiortc"
    found = [Case(output, viewer, n) for n in durations.viewers]
    if output == "mjpeg":
        found.append(Case(output, viewer, 1, age=True))
    elif durations.browser and browser_missing() is None:
        found.append(Case(output, "chromium", 1, age=True))
    return found


# -- the processes -------------------------------------------------------------------------------

def passthrough_model(folder: Path) -> Path:
    """A stylecast artifact whose graph is Identity: the daemon publishes the test card as is,
    and inference takes microseconds (this section is about the consumers, not the model)."""
    import hashlib

    import onnx
    from onnx import TensorProto, helper

    from stylecast.core.artifact import Contract, TensorSpec, write_onnx_metadata

    dims = ["height", "width", 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["stylized"])], "passthrough",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, dims)],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, dims)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    spec = TensorSpec(name="image", layout="HWC", dtype="uint8", color_order="RGB",
                      value_range=(0, 255))
    write_onnx_metadata(model, Contract(
        input=spec, output=spec.model_copy(update={"name": "stylized"}), height=None,
        width=None, size_multiple=4, style="passthrough", preset="nano", precision="fp32",
        weights_sha256=hashlib.sha256(b"passthrough").hexdigest()))
    path = folder / "passthrough.onnx"
    onnx.save(model, str(path))
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """`command` running, its stderr in `log`, until the block ends (SIGTERM, then SIGKILL)."""
    with log.open("w") as err:
        process = subprocess.Popen(command, env=clean_env(), stdout=subprocess.DEVNULL,
                                   stderr=err, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exited(process: subprocess.Popen, log: Path) -> RuntimeError:
    return RuntimeError(f"{Path(process.args[0]).name} exited ({process.returncode}): "
                        f"{log.read_text().strip()[-500:]}")


@contextlib.contextmanager
def daemon(folder: Path) -> Iterator[tuple[str, psutil.Process]]:
    """stylecastd on the test card, publishing rgb24 on ipc: (endpoint, its process)."""
    publish = f"ipc://{folder}/frames"
    command = [stylecastd(), "--model", str(passthrough_model(folder)), "--source", SOURCE,
               "--publish", publish, "--control", f"ipc://{folder}/control",
               "--log-level", "warning"]
    log = folder / "stylecastd.log"
    with started(command, log) as process:
        with CaptureTimes(publish) as first:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not first.times:
                if process.poll() is not None:
                    raise exited(process, log)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no frame from stylecastd in {START_TIMEOUT_S:g} s")
                time.sleep(0.1)
        yield publish, psutil.Process(process.pid)


def stylecast_sub() -> str:
    beside = Path(sys.executable).with_name("stylecast-sub")
    return str(beside) if beside.exists() else (shutil.which("stylecast-sub") or "stylecast-sub")


@contextlib.contextmanager
def consumer(output: str, endpoint: str, folder: Path) -> Iterator[tuple[str, psutil.Process]]:
    """`stylecast-sub ENDPOINT --http|--webrtc 127.0.0.1:0`: (the page's URL, its process)."""
    flag = "--http" if output == "mjpeg" else "--webrtc"
    log = folder / f"sub-{output}.log"
    with started([stylecast_sub(), endpoint, flag, "127.0.0.1:0"], log) as process:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (found := SERVING.search(log.read_text())):
            if process.poll() is not None:
                raise exited(process, log)
            if time.monotonic() > deadline:
                raise RuntimeError(f"stylecast-sub {flag} never said where it serves")
            time.sleep(0.1)
        yield found[1], psutil.Process(process.pid)


class CaptureTimes:
    """A plain SUB on the daemon beside the consumers: each published seq's capture time
    (CLOCK_MONOTONIC ns), to date the parts an MJPEG client receives."""

    def __init__(self, endpoint: str) -> None:
        self.times: dict[int, int] = {}
        self._context = zmq.Context()
        self._sub = self._context.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"stylized")
        self._sub.connect(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-times", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._sub.poll(100):
                _, header, _ = self._sub.recv_multipart(copy=False)
                document = json.loads(header.bytes)
                self.times[int(document["seq"])] = int(document["t_capture_ns"])

    def __enter__(self) -> CaptureTimes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sub.close(linger=0)
        self._context.term()


# -- the viewers ---------------------------------------------------------------------------------

class Viewers(Protocol):
    def processes(self) -> list[psutil.Process]: ...
    def ready(self, timeout_s: float) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class ViewerProcess:
    """`python -m benchmarks.consumer_viewers KIND URL N`, driven over its stdin and stdout."""

    def __init__(self, kind: str, url: str, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.consumer_viewers", kind, url, str(count)],
            cwd=ROOT, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)

    def _line(self, timeout_s: float) -> str:
        holder: list[str] = []
        reader = threading.Thread(target=lambda: holder.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not holder:
            raise TimeoutError(f"the viewers said nothing for {timeout_s:g} s")
        line = holder[0].strip()
        if not line or line.startswith("error:"):
            raise RuntimeError(f"the viewers failed: {line or 'exited'}")
        return line

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(self.process.pid)]

    def _say(self, word: str) -> None:
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def ready(self, timeout_s: float) -> None:
        if self._line(timeout_s) != "ready":
            raise RuntimeError("the viewers did not say ready")

    def start(self) -> None:
        self._say("start")

    def stop(self) -> dict[str, Any]:
        self._say("stop")
        return json.loads(self._line(STOP_TIMEOUT_S))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


class NoViewers:
    """The subscription alone: what stylecast-sub costs before anyone watches."""

    def processes(self) -> list[psutil.Process]:
        return []

    def ready(self, timeout_s: float) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> dict[str, Any]:
        return {"seconds": None, "codec": None, "viewers": []}

    def close(self) -> None:
        pass


def open_viewers(case: Case, url: str) -> Viewers:
    if case.viewers == 0:
        return NoViewers()
    if case.viewer == "chromium":
        from benchmarks.consumer_browser import ChromiumViewer  # Selenium: only when it runs

        return ChromiumViewer(url)
    return ViewerProcess(case.output, url, case.viewers)


# -- one row -------------------------------------------------------------------------------------

@dataclass
class Processes:
    sub: psutil.Process
    daemon: psutil.Process
    endpoint: str
    url: str


def cpu_seconds(*processes: psutil.Process) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def host_busy_seconds() -> float:
    """CPU time every core of this machine spent busy, summed."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_case(case: Case, processes: Processes, durations: Durations) -> dict[str, Any]:
    """One row; a failure becomes its "error" and the next case goes on."""
    row = case.keys() | dict.fromkeys(FIGURES) | {"error": None}
    try:
        row.update(measure(case, processes, durations))
    except Exception as err:
        row["error"] = f"{type(err).__name__}: {err}"
    time.sleep(0.5)  # closed connections leave the server before the next row
    return row


def measure(case: Case, processes: Processes, durations: Durations) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        viewers = open_viewers(case, processes.url)
        stack.callback(viewers.close)
        viewers.ready(READY_TIMEOUT_S)
        dates = stack.enter_context(CaptureTimes(processes.endpoint)) if (
            case.age and case.output == "mjpeg") else None
        time.sleep(durations.settle_s)
        watched = viewers.processes()
        before = cpu_now(processes, watched)
        viewers.start()
        time.sleep(durations.window_s)
        report = viewers.stop()
        after = cpu_now(processes, watched)
    seconds = after[-1] - before[-1]
    cpu = [round(100 * (b - a) / seconds, 1) for a, b in zip(before[:-1], after[:-1],
                                                              strict=True)]
    return {"sub_cpu_pct": cpu[0], "daemon_cpu_pct": cpu[1], "host_cpu_pct": cpu[2],
            "viewers_cpu_pct": cpu[3] if watched else None, "window_s": round(seconds, 2),
            **viewer_figures(report, seconds), **age_figures(report, dates)}


def cpu_now(processes: Processes, viewers: list[psutil.Process]) -> tuple[float, ...]:
    """CPU seconds so far: stylecast-sub, stylecastd, the whole host, the viewers; then now."""
    return (cpu_seconds(processes.sub), cpu_seconds(processes.daemon), host_busy_seconds(),
            cpu_seconds(*viewers), time.monotonic())


def viewer_figures(report: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Per viewer, over the viewers' own window (the CPU's, to a pipe's delay)."""
    viewers = report["viewers"]
    if not viewers:
        return {}
    window = report["seconds"] or seconds
    fps = [v["frames"] / window for v in viewers]
    figures = {"codec": report["codec"], "size": viewers[0].get("size"),
               "fps_mean": round(float(np.mean(fps)), 1), "fps_min": round(min(fps), 1)}
    if all(v["bytes"] is not None for v in viewers):
        mbit = [v["bytes"] * 8 / window / 1e6 for v in viewers]
        figures |= {"mbit_s": round(float(np.mean(mbit)), 2),
                    "mbit_s_total": round(sum(mbit), 2)}
    return figures


def age_figures(report: dict[str, Any], dates: CaptureTimes | None) -> dict[str, Any]:
    """Chromium's own ages, or an MJPEG client's arrivals less their frames' capture times."""
    viewers = report["viewers"]
    if dates is not None:
        arrivals = viewers[0]["arrivals"]
        ages = [(at - dates.times[seq]) / 1e6 for seq, at in arrivals if seq in dates.times]
        if len(ages) < len(arrivals):
            raise RuntimeError(f"{len(arrivals) - len(ages)} of {len(arrivals)} MJPEG parts "
                               "carry a seq the daemon was not seen publishing")
    elif viewers and "ages_ms" in viewers[0]:
        ages = viewers[0]["ages_ms"]
    else:
        return {}
    if not ages:
        raise RuntimeError("no frame age measured in the window")
    spread = percentiles(ages)
    return {"age_ms_p50": round(spread["p50"], 1), "age_ms_p95": round(spread["p95"], 1),
            "ages": len(ages)}


def per_viewer(rows: list[dict[str, Any]]) -> None:
    """CPU%/viewer on each row with viewers: (its CPU - the same output's with none) / N."""
    for row in rows:
        idle = next((r["sub_cpu_pct"] for r in rows if r["output"] == row["output"]
                     and r["viewers"] == 0 and r["sub_cpu_pct"] is not None), None)
        if row["viewers"] and idle is not None and row["sub_cpu_pct"] is not None:
            row["cpu_pct_per_viewer"] = round((row["sub_cpu_pct"] - idle) / row["viewers"], 1)


def slope(rows: list[dict[str, Any]], output: str) -> float | None:
    """Least-squares CPU% per added viewer over the output's rows without an age."""
    points = [(r["viewers"], r["sub_cpu_pct"]) for r in rows if r["output"] == output
              and not r["age"] and r["sub_cpu_pct"] is not None]
    if len({n for n, _ in points}) < 2:
        return None
    return float(np.polyfit(*zip(*points, strict=True), 1)[0])


# -- the section ---------------------------------------------------------------------------------

def run(quick: bool) -> Section:
    durations = QUICK if quick else FULL
    loads = [os.getloadavg()[0]]
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="scb-", dir="/tmp"))  # ipc paths must stay short
    try:
        with daemon(folder) as (endpoint, daemon_process):
            for output in ("mjpeg", "webrtc"):
                with consumer(output, endpoint, folder) as (url, sub):
                    processes = Processes(sub, daemon_process, endpoint, url)
                    rows += [run_case(case, processes, durations)
                             for case in cases(output, durations)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    loads.append(os.getloadavg()[0])
    per_viewer(rows)
    return Section(name="consumers",
                   title=f"Consumers: per-viewer cost of stylecast-sub, MJPEG vs WebRTC, "
                         f"{WIDTH}x{HEIGHT} @ {CAMERA_FPS:g} fps",
                   columns=COLUMNS, rows=rows, notes=notes(rows, durations, quick, loads))


def notes(rows: list[dict[str, Any]], durations: Durations, quick: bool,
          loads: list[float]) -> list[str]:
    return method_notes(durations, quick, loads) + observations(rows)


def method_notes(durations: Durations, quick: bool, loads: list[float]) -> list[str]:
    why = browser_missing()
    if not durations.browser:
        browser = (" Quick mode has no Chromium row: starting a browser takes longer than the "
                   "whole quick section may.")
    else:
        browser = f" No Chromium row here: {why}." if why else ""
    return [
        f"Stream: stylecastd on {SOURCE}, publishing rgb24 on ipc through a pass-through "
        "(Identity) model, so inference costs next to nothing and the cores are left to the "
        "consumers; rgb24 because the WebRTC output takes raw pixels (JPEG would be decoded "
        "first) and the MJPEG output encodes each frame once, however many viewers.",
        "Consumer: one real `stylecast-sub ENDPOINT --http 127.0.0.1:0` (MJPEG), then "
        "`--webrtc 127.0.0.1:0` (WebRTC, aiortc), each kept running across its rows.",
        "Viewers: N real receivers in one process of their own (benchmarks/consumer_viewers.py): "
        "MJPEG, HTTP clients reading /stream.mjpg part by part (they do not decode the JPEG); "
        "WebRTC, aiortc peer connections that POST the page's offer to /offer and receive and "
        "decode every frame. Their own CPU (decoding included) is not in sub CPU%: viewers CPU% "
        "is that process's (for Chromium: chromedriver and every Chromium process).",
        f"Timing: per row, {durations.settle_s:g} s after every viewer has had a frame (WebRTC's "
        f"bitrate settles), then a {durations.window_s:g} s window. sub CPU% = the stylecast-sub "
        "process's user+system CPU time over the window (psutil), in % of one core; CPU%/viewer "
        "= (that - the same output's with no viewer) / N; host CPU% = every core busy, summed "
        "(every process, niced background work included: on a shared machine it says how busy "
        "the cores were, not what the consumers cost).",
        "fps/viewer: frames each viewer received in the window per second (mean; min fps: the "
        f"slowest); the daemon publishes {CAMERA_FPS:g}. Mbit/s/viewer: bytes each received: "
        "MJPEG, off the HTTP socket (JPEG parts and their headers); WebRTC, the peer "
        "connection's transport bytesReceived from getStats (aiortc's inbound-rtp has no "
        "byte count; Chromium's is read from the page's own connection): RTP, RTCP and the "
        "data channel's per-frame capture times. UDP/IP and TCP headers are not counted.",
        "Frame age (rows with age p50): one viewer. MJPEG: an HTTP client, the arrival of a "
        "part's last byte less the capture time of its frame (each part carries its "
        "X-Stylecast-Seq; a plain SUB beside it on the daemon gives each seq's capture time, "
        "CLOCK_MONOTONIC on this host); a browser would add JPEG decoding and painting. "
        "WebRTC: headless Chromium on the page, the ages the page measures itself (wall clock "
        "at display less capture wall time, webrtc.html), so decoding, the jitter buffer and "
        f"display are in.{browser}",
        f"Load average (1 min) on this machine: {loads[0]:.2f} at the start, {loads[1]:.2f} at "
        f"the end{' (quick: figures mean nothing)' if quick else ''}.",
    ]


def observations(rows: list[dict[str, Any]]) -> list[str]:
    def one(output: str, viewers: int, key: str) -> Any:
        found = [r[key] for r in rows if r["output"] == output and r["viewers"] == viewers
                 and not r["age"] and r[key] is not None]
        return found[0] if found else None

    slopes = {output: slope(rows, output) for output in ("mjpeg", "webrtc")}
    shown = {k: "n/a" if v is None else f"{v:.1f}" for k, v in slopes.items()}
    mjpeg, webrtc = one("mjpeg", 1, "mbit_s"), one("webrtc", 1, "mbit_s")
    compared = "n/a" if mjpeg is None or webrtc is None else (
        f"WebRTC {webrtc:g} against MJPEG {mjpeg:g} Mbit/s "
        f"({'below' if webrtc < mjpeg else 'not below'} MJPEG's)")
    return [
        f"Per viewer (least-squares slope of sub CPU% over N): MJPEG {shown['mjpeg']}%, "
        f"WebRTC {shown['webrtc']}% of a core. MJPEG sends the one JPEG to everyone; WebRTC "
        "the one H.264 encoding (one encoder per stream, shared by every H.264 viewer).",
        f"Bandwidth, one viewer (an observation, not a target): {compared}; not at one "
        "picture quality: JPEG q85 against H.264 at the shared encoder's fixed bitrate (2 "
        "Mbit/s at 640x480), on the test card.",
    ]
