"""Both ends of the transport benchmark (benchmarks/transport.py).

The senders run in the benchmark's process. Each subscriber runs in a worker process of its own,
started once (multiprocessing, spawn) and reused case after case. A worker hosts one receiver
at a time: a plain SUB socket or the real `Subscriber` for stylecast, an `ImageHub` for imagezmq.
It stamps every message it gets with time.monotonic_ns() (CLOCK_MONOTONIC, shared by all
processes on the host) next to the send time the message carries. The benchmark and its workers
talk over multiprocessing pipes in JSON; frames travel over ZeroMQ only.

Per case, a worker's pipe carries: job -> "armed" (socket ready) -> "first" (a frame came)
-> stop (with the measuring window) -> "result" (what arrived inside the window).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import zmq
from imagezmq import ImageHub, ImageSender

from stylecast.daemon.config import PublishSettings
from stylecast.daemon.publisher import Publisher
from stylecast.stream.client import RCVHWM, Subscriber
from stylecast.stream.protocol import PROTOCOL_VERSION, STYLIZED, load_header

SLOW_CONSUMER_S = 0.2  # what the slow subscriber spends on each frame it takes
RECV_TIMEOUT_MS = 20  # every receive has a timeout, so a worker always hears "stop"
STOP_CHECK_NS = 10_000_000  # a fast receiver looks at its pipe this often
START_TIMEOUT_S = 30.0  # spawning 8 interpreters on a busy 2-core box
REPLY_TIMEOUT_S = 5.0  # any other answer from a worker, and imagezmq's hub's "OK"
STREAM = "transport-bench"
HEIGHT, WIDTH = 480, 640  # the frames' size


# -- the pipe between the benchmark and a worker -----------------------------------------------

def send(conn: Connection, message: Any) -> None:
    try:
        conn.send_bytes(json.dumps(message).encode())
    except (BrokenPipeError, ConnectionResetError):
        raise BrokenPipeError("the other end of the pipe is gone (a worker died?)") from None


def receive(conn: Connection, timeout_s: float | None = None) -> Any:
    """The next message: TimeoutError if none comes within timeout_s; RuntimeError for an error
    the other end reports. EOFError when the other end is gone."""
    if timeout_s is not None and not conn.poll(timeout_s):
        raise TimeoutError(f"a subscriber worker did not answer within {timeout_s:g} s")
    try:
        data = conn.recv_bytes()
    except EOFError:
        raise EOFError("the other end of the pipe is gone (a worker died?)") from None
    message = json.loads(data)
    if isinstance(message, dict) and message.get("kind") == "error":
        raise RuntimeError(f"subscriber worker: {message['error']}")
    return message


# -- senders, in the benchmark's process: send() offers the next frame, says if it went out ---

class StylecastSender:
    """The daemon's Publisher (XPUB, PublishSettings' SNDHWM, NOBLOCK, zero-copy payloads),
    used as the daemon's publish stage uses it: take in subscriptions, send only when wanted."""

    def __init__(self, endpoint: str, fmt: str, payloads: list[Any]) -> None:
        self.fmt = fmt
        self.payloads = payloads
        self.seq = 0
        self.context = zmq.Context()
        settings = PublishSettings(endpoints=[endpoint], format=fmt, stream=STREAM)
        try:
            self.publisher = Publisher(self.context, settings)
        except BaseException:
            self.context.term()
            raise
        self.endpoint = self.publisher.endpoints[0]

    def send(self) -> bool:
        self.publisher.poll_subscriptions()
        if not self.publisher.wanted(STYLIZED):
            return False
        self.seq += 1
        payload = self.payloads[self.seq % len(self.payloads)]
        self.publisher.send(STYLIZED, self._header(time.monotonic_ns()), payload)
        return True

    def _header(self, now_ns: int) -> dict[str, Any]:
        """A v1 frame header with every key the daemon sends (docs/protocol.md)."""
        return {
            "v": PROTOCOL_VERSION, "seq": self.seq, "frame": self.seq - 1,
            "stream": STREAM, "t_capture_ns": now_ns,
            "t_capture_unix_ns": time.time_ns(), "t_publish_ns": now_ns,
            "width": WIDTH, "height": HEIGHT, "format": self.fmt, "style": "bench",
            "timing_ms": {"queue_infer": 0.0, "infer": 0.0, "queue_publish": 0.0,
                          "encode": 0.0, "total": 0.0},
            "dropped": {"infer": 0, "publish": 0, "engine": 0, "invalid": 0},
        }

    def close(self) -> None:
        self.publisher.close()
        self.context.term()


class ImagezmqSender:
    """imagezmq's ImageSender as shipped (its socket options untouched but LINGER and, for
    REQ/REP, a reply timeout), the send time in `msg`: send_image for rgb24, send_jpg for JPEG."""

    def __init__(self, endpoint: str, fmt: str, payloads: list[Any], req_rep: bool) -> None:
        self.payloads = payloads
        self.seq = 0
        self.sender = ImageSender(connect_to=endpoint, REQ_REP=req_rep)
        socket = self.sender.zmq_socket
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, int(REPLY_TIMEOUT_S * 1000))
        # a PUB sender binds (tcp://127.0.0.1:* gets its port here); a REQ sender connects
        self.endpoint = endpoint if req_rep else socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._send = self.sender.send_jpg if fmt == "jpeg" else self.sender.send_image

    def send(self) -> bool:
        self.seq += 1
        payload = self.payloads[self.seq % len(self.payloads)]
        try:
            self._send(f"{self.seq} {time.monotonic_ns()}", payload)
        except zmq.Again:  # only REQ/REP waits for anything: the hub's reply
            raise TimeoutError(f"the imagezmq hub did not reply within {REPLY_TIMEOUT_S:g} s"
                               ) from None
        return True

    def close(self) -> None:
        self.sender.close()


# -- receivers, in the workers: next_sent_ns() is the send time of the next message the consumer
#    gets, None when nothing came within RECV_TIMEOUT_MS

class PlainSub:
    """stylecast, fast subscriber: a SUB socket set up as the client's reader thread sets up its
    own (RCVHWM, LINGER, topic prefix), receiving every message and parsing its v1 header."""

    def __init__(self, endpoint: str) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, RCVHWM)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
        self.socket.setsockopt(zmq.SUBSCRIBE, STYLIZED)
        self.socket.connect(endpoint)
        self.endpoint = endpoint

    def next_sent_ns(self) -> int | None:
        try:
            parts = self.socket.recv_multipart()
        except zmq.Again:
            return None
        return int(load_header(parts[1])["t_publish_ns"])

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


class NewestFrameSub:
    """stylecast, slow subscriber: the real client, whose reader thread keeps the newest frame."""

    def __init__(self, endpoint: str) -> None:
        self.subscriber = Subscriber(endpoint, "stylized").start()
        self.endpoint = endpoint

    def next_sent_ns(self) -> int | None:
        try:
            frame = self.subscriber.next(timeout_s=RECV_TIMEOUT_MS / 1000)
        except TimeoutError:
            return None
        return int(frame.header["t_publish_ns"])

    def close(self) -> None:
        self.subscriber.close()


class Hub:
    """imagezmq, as its users run it: ImageHub's recv_image/recv_jpg (a receive timeout added),
    the send time in the text `msg` as f"{seq} {t_ns}"; in REQ/REP mode it answers b"OK"."""

    def __init__(self, endpoint: str, fmt: str, req_rep: bool) -> None:
        self.hub = ImageHub(open_port=endpoint, REQ_REP=req_rep)
        self.req_rep = req_rep
        socket = self.hub.zmq_socket
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
        # a REP hub binds (tcp://127.0.0.1:* gets its port here); a SUB hub connects
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT) if req_rep else endpoint
        self._recv = self.hub.recv_jpg if fmt == "jpeg" else self.hub.recv_image

    def next_sent_ns(self) -> int | None:
        try:
            msg, _ = self._recv()
        except zmq.Again:
            return None
        if self.req_rep:
            self.hub.send_reply(b"OK")
        return int(msg.split()[1])

    def close(self) -> None:
        self.hub.close()


def open_receiver(job: dict[str, Any]) -> PlainSub | NewestFrameSub | Hub:
    if job["system"] == "imagezmq":
        return Hub(job["endpoint"], job["format"], job["mode"] == "req/rep")
    return NewestFrameSub(job["endpoint"]) if job["slow"] else PlainSub(job["endpoint"])


# -- the worker process -------------------------------------------------------------------------

def worker_main(conn: Connection) -> None:
    """Run one receiver job after another until the benchmark sends None (or goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the benchmark's; it ends us
    with contextlib.suppress(EOFError, BrokenPipeError):
        send(conn, {"kind": "hello"})
        while (job := receive(conn)) is not None:
            try:
                result = run_job(job, conn)
            except Exception as err:  # any failure becomes the case's "error", not a hang
                result = {"kind": "error", "error": f"{type(err).__name__}: {err}"}
            send(conn, result)


def run_job(job: dict[str, Any], conn: Connection) -> dict[str, Any]:
    receiver = open_receiver(job)
    try:
        send(conn, {"kind": "armed", "endpoint": receiver.endpoint})
        arrived, sent = consume(receiver, conn, job["slow"])
    finally:
        receiver.close()
    t0, t1 = receive(conn)["window"]
    inside = [(a, s) for a, s in zip(arrived, sent, strict=True) if t0 <= a <= t1]
    return {"kind": "result", "count": len(inside),
            "ms": [round((a - s) / 1e6, 3) for a, s in inside]}


def consume(receiver: Any, conn: Connection, slow: bool) -> tuple[list[int], list[int]]:
    """Take messages as this consumer does until the benchmark says stop (left in the pipe):
    a fast one takes each as it comes, a slow one spends SLOW_CONSUMER_S after each."""
    arrived: list[int] = []
    sent: list[int] = []
    next_check = 0
    while True:
        sent_ns = receiver.next_sent_ns()
        now = time.monotonic_ns()
        if sent_ns is not None:
            arrived.append(now)
            sent.append(sent_ns)
            if len(arrived) == 1:
                send(conn, {"kind": "first"})
            if slow and conn.poll(SLOW_CONSUMER_S):  # sleeps: the cores stay with transport
                break
        if now >= next_check:
            if conn.poll():
                break
            next_check = now + STOP_CHECK_NS
    return arrived, sent


# -- the benchmark's side -----------------------------------------------------------------------

class WorkerPool:
    """`size` worker processes, each hosting one subscriber per case. Any failure in a case is
    answered with reset(): the workers are ended and fresh ones start for the next case."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[tuple[Any, Connection]] = []
        self._active: list[Connection] = []
        self._waiting_first: set[Connection] = set()

    def start(self) -> None:
        """Spawn the missing workers and wait until each has imported what it needs."""
        started = []
        for _ in range(self.size - len(self._workers)):
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=worker_main, args=(theirs,), daemon=True,
                                            name="transport-subscriber")
            process.start()
            theirs.close()
            started.append((process, ours))
        self._workers += started
        for _, conn in started:
            receive(conn, START_TIMEOUT_S)  # hello

    def arm(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Hand one job to each of the first len(jobs) workers; their receivers' endpoints."""
        self.start()
        self._active = [conn for _, conn in self._workers[:len(jobs)]]
        for conn, job in zip(self._active, jobs, strict=True):
            send(conn, job)
        self._waiting_first = set(self._active)
        return [receive(conn, REPLY_TIMEOUT_S)["endpoint"] for conn in self._active]

    def all_got_a_frame(self, timeout_s: float = 0.0) -> bool:
        """Whether every active subscriber has had its first frame (waits up to timeout_s)."""
        for conn in wait(list(self._waiting_first), timeout_s):
            if receive(conn)["kind"] == "first":
                self._waiting_first.discard(conn)
        return not self._waiting_first

    def stop(self, t0_ns: int, t1_ns: int) -> list[dict[str, Any]]:
        """End the case; each subscriber's arrivals inside [t0_ns, t1_ns], in job order."""
        for conn in self._active:
            send(conn, {"window": [t0_ns, t1_ns]})
        results = []
        for conn in self._active:
            while (message := receive(conn, REPLY_TIMEOUT_S))["kind"] != "result":
                pass  # a "first" that crossed the stop
            results.append(message)
        self._active = []
        return results

    def reset(self) -> None:
        for process, conn in self._workers:
            process.kill()  # a stopped or hung worker too; it holds nothing to save
            process.join(timeout=REPLY_TIMEOUT_S)
            conn.close()
        self._workers, self._active, self._waiting_first = [], [], set()

    def close(self) -> None:
        for _, conn in self._workers:
            with contextlib.suppress(OSError):
                send(conn, None)
        for process, _ in self._workers:
            process.join(timeout=REPLY_TIMEOUT_S)
        self.reset()  # whatever did not end by itself

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
