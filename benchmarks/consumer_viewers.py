"""The viewers of the consumers section, as a program of their own: N real receivers of one
`stylecast-sub` output, in a process apart from it and from the benchmark.

    python -m benchmarks.consumer_viewers mjpeg|webrtc URL N

- mjpeg: N HTTP clients, each reading GET /stream.mjpg (multipart/x-mixed-replace) part by
  part: frames, bytes off the socket, and each part's X-Stylecast-Seq with its arrival time
  (CLOCK_MONOTONIC, the daemon's capture clock on this host). They do not decode the JPEGs.
- webrtc: N aiortc peer connections, each offering what the page offers (a receive-only video
  transceiver and the negotiated data channel) to POST /offer, then receiving and decoding
  every frame of the track (PyAV); bytes are the connection's transport bytesReceived.

It talks to the benchmark over stdin/stdout, one line each way: it prints `ready` once every
viewer has had a frame; on `start` it takes each viewer's counts, on `stop` again, prints the
difference as one JSON line and closes its connections (a closed peer connection tells the
server, so nothing keeps encoding for it).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

BOUNDARY = b"--stylecastframe"
READ_LIMIT = 4 * 1024 * 1024  # a part's header line is short; the limit only guards readuntil


class Counts:
    """What one viewer has received so far."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.arrivals: list[tuple[int, int]] = []  # (seq, monotonic ns), MJPEG only
        self.first = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {"frames": self.frames, "bytes": self.bytes, "arrivals": len(self.arrivals)}


class MjpegViewer:
    def __init__(self, url: str) -> None:
        self.address = urlsplit(url)
        self.counts = Counts()
        self.codec = "MJPEG"
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None

    async def connect(self) -> None:
        reader, self._writer = await asyncio.open_connection(
            self.address.hostname, self.address.port, limit=READ_LIMIT)
        self._writer.write(f"GET /stream.mjpg HTTP/1.1\r\nHost: {self.address.netloc}\r\n"
                           "\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"GET /stream.mjpg: {head.splitlines()[0]!r}")
        self.counts.bytes += len(head)
        self._task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            part = await reader.readuntil(b"\r\n\r\n")
            headers = part_headers(part)
            body = await reader.readexactly(int(headers["content-length"]) + 2)  # + CRLF
            counts = self.counts
            counts.arrivals.append((int(headers["x-stylecast-seq"]), time.monotonic_ns()))
            counts.frames += 1
            counts.bytes += len(part) + len(body)
            counts.first.set()

    async def bytes_received(self) -> int:
        return self.counts.bytes

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


def part_headers(part: bytes) -> dict[str, str]:
    """The headers of one multipart part (its boundary line first) by lower-case name."""
    lines = part.decode("latin-1").split("\r\n")
    if lines[0].encode() != BOUNDARY:
        raise RuntimeError(f"expected the boundary, got {lines[0]!r}")
    pairs = (line.split(":", 1) for line in lines[1:] if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


class WebRtcViewer:
    def __init__(self, url: str) -> None:
        self.address = urlsplit(url)
        self.counts = Counts()
        self.codec = "?"
        self.size: tuple[int, int] | None = None
        self._connection: Any = None
        self._tasks: list[asyncio.Task] = []

    async def connect(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        connection = self._connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        # The page's channel (webrtc.html): the server sends each frame's capture time on it.
        connection.createDataChannel("frames", negotiated=True, id=0, ordered=False,
                                     maxRetransmits=0)
        connection.addTransceiver("video", direction="recvonly")
        connection.on("track", lambda track: self._tasks.append(
            asyncio.ensure_future(self._receive(track))))
        await connection.setLocalDescription(await connection.createOffer())
        offer = {"sdp": connection.localDescription.sdp, "type": "offer"}
        answer = await asyncio.to_thread(post_offer, self.address.netloc, offer)
        self.codec = video_codec(answer["sdp"])
        await connection.setRemoteDescription(RTCSessionDescription(**answer))

    async def _receive(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await track.recv()  # decoded by aiortc's decoder thread
                self.size = (frame.width, frame.height)
                self.counts.frames += 1
                self.counts.first.set()
        except MediaStreamError:
            return

    async def bytes_received(self) -> int:
        """Bytes this connection's transport received: RTP, RTCP and data channel, as sent."""
        report = await self._connection.getStats()
        return sum(s.bytesReceived for s in report.values() if s.type == "transport")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._connection is not None:
            await self._connection.close()


def post_offer(netloc: str, offer: dict[str, str]) -> dict[str, str]:
    """POST the offer as the page does (JSON, from the page's own origin): the answer."""
    connection = http.client.HTTPConnection(netloc, timeout=30)
    try:
        connection.request("POST", "/offer", json.dumps(offer).encode(), {
            "Content-Type": "application/json", "Origin": f"http://{netloc}"})
        response = connection.getresponse()
        reply = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST /offer: HTTP {response.status} {reply}")
    return reply


def video_codec(sdp: str) -> str:
    """The first codec of the answer's video section: the one the server sends."""
    lines = sdp.splitlines()
    video = next(line for line in lines if line.startswith("m=video"))
    payload_type = video.split()[3]
    rtpmap = next(line for line in lines if line.startswith(f"a=rtpmap:{payload_type} "))
    return "video/" + rtpmap.split()[1].split("/")[0]


def loopback_ice() -> None:
    """Gather ICE candidates on loopback only: the server offers 127.0.0.1 alone, and aioice
    leaves loopback out by default."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def counts_of(viewers: list[Any]) -> list[dict[str, Any]]:
    counted = []
    for viewer in viewers:
        snapshot = viewer.counts.snapshot()
        snapshot["bytes"] = await viewer.bytes_received()
        counted.append(snapshot)
    return counted


async def command() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve(kind: str, url: str, count: int) -> None:
    if kind == "webrtc":
        loopback_ice()
    viewers = [(MjpegViewer if kind == "mjpeg" else WebRtcViewer)(url) for _ in range(count)]
    try:
        for viewer in viewers:
            await viewer.connect()
        await asyncio.gather(*(viewer.counts.first.wait() for viewer in viewers))
        say("ready")
        await expect("start")
        before, start = await counts_of(viewers), time.monotonic_ns()
        await expect("stop")
        after, end = await counts_of(viewers), time.monotonic_ns()
        say(json.dumps(report(viewers, before, after, (end - start) / 1e9)))
    finally:
        for viewer in viewers:
            await viewer.close()


async def expect(word: str) -> None:
    got = await command()
    if got != word:
        raise RuntimeError(f"expected {word!r} from the benchmark, got {got!r}")


def report(viewers: list[Any], before: list[dict[str, Any]], after: list[dict[str, Any]],
           seconds: float) -> dict[str, Any]:
    """Per viewer: frames and bytes inside the window, and the MJPEG (seq, arrival ns) pairs."""
    rows = []
    for viewer, old, new in zip(viewers, before, after, strict=True):
        rows.append({"frames": new["frames"] - old["frames"],
                     "bytes": new["bytes"] - old["bytes"],
                     "arrivals": viewer.counts.arrivals[old["arrivals"]:new["arrivals"]],
                     "size": getattr(viewer, "size", None)})
    return {"seconds": seconds, "codec": viewers[0].codec if viewers else None,
            "viewers": rows}


def main(argv: list[str]) -> int:
    kind, url, count = argv[0], argv[1], int(argv[2])
    try:
        asyncio.run(serve(kind, url, count))
    except Exception as err:
        say(f"error: {type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
