"""stylecast-sub's WebRTC output (issue #21) against a real stylecastd on the test card: the
plug-in fed by a real Subscriber, its page played by headless Chromium over a real aiortc peer
connection on this host (the video's size, frames decoded, the page's own frame age from the
data channel), then the same through `stylecast-sub --webrtc`. Also: what the offer endpoint
refuses, and a port that is taken."""

from __future__ import annotations

import argparse
import json
import re
import select
import signal
import socket
import threading
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from benchmarks.consumers import ViewerProcess
from stylecast.core.errors import ConfigError
from stylecast.stream.client import Subscriber
from stylecast.stream.outputs import webrtc

from support.browser import driven_chromium
from support.page_server import post_json, request
from support.waiting import wait_until

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install -e '.[webrtc]')")
from stylecast.stream.outputs.webrtc_encoder import Cursor, Encoded, next_frame
from stylecast.stream.outputs.webrtc_media import PTS_DITHER_TICKS

WIDTH, HEIGHT = 160, 120
SOURCE = f"test://?width={WIDTH}&height={HEIGHT}&fps=15"
WAIT_S = 60.0  # generous: a shared 2-core machine
START_S = 120.0  # stylecast-sub's imports alone can take 30 s there
AGE_SANITY_MS = 5000.0  # not a speed bound: an age outside (0, this) was not measured right
# WebRTC between two programs on this host, also where loopback is its only network: Chromium
# offers loopback candidates and plain addresses (not mDNS names that aiortc would have to
# resolve by multicast).
WEBRTC_FLAGS = ("--allow-loopback-in-peer-connection",
                "--disable-features=WebRtcHideLocalIpsWithMdns")
SERVING = re.compile(r"serving WebRTC at http://(.+):(\d+)/$")


@pytest.fixture
def daemon(daemon_with, models):
    started = daemon_with("--model", str(models["invert"]), "--source", SOURCE)
    started.notify.wait_for("READY=1", START_S)
    started.notify.keep_draining()
    return started


def open_plugin(*flags: str, endpoint: str = "ipc:///nowhere") -> webrtc.WebRtcOutput | None:
    parser = argparse.ArgumentParser()
    webrtc.PLUGIN.add_arguments(parser)
    return webrtc.PLUGIN.open(parser.parse_args(list(flags)),
                              SimpleNamespace(endpoint=endpoint, topic="stylized"))


@contextmanager
def fed_output(endpoint: str):
    """The plug-in's output on a free loopback port, written every frame of a real subscription
    (as stylecast-sub does) until the block ends; yields (output, address)."""
    output = open_plugin("--webrtc", "0", endpoint=endpoint)
    stop = threading.Event()
    with Subscriber(endpoint) as subscriber:
        output.start(subscriber)

        def feed() -> None:
            while not stop.is_set():
                try:
                    output.write(subscriber.next(0.25))
                except TimeoutError:
                    output.poll()

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            host, port = SERVING.match(f"serving WebRTC at {output.url}").groups()
            yield output, (host, int(port))
        finally:
            stop.set()
            feeder.join()
            output.summary = output.close(completed=True)


def page_stats(browser) -> dict:
    return browser.execute_script(
        "const v = document.querySelector('video'); return Object.assign({}, "
        "window.stylecastStats, {videoWidth: v.videoWidth, videoHeight: v.videoHeight, "
        "currentTime: v.currentTime})")


def watch_until_measured(folder, address) -> tuple[dict, dict]:
    """Open the page in Chromium; the page's stats once it has shown frames and measured ages,
    and again a moment later."""
    from selenium.webdriver.support.ui import WebDriverWait

    with driven_chromium(folder, flags=WEBRTC_FLAGS) as browser:
        browser.get(f"http://{address[0]}:{address[1]}/")
        wait = WebDriverWait(browser, WAIT_S)
        try:
            wait.until(lambda _: page_stats(browser)["ages"] >= 5
                       and page_stats(browser)["framesDecoded"] >= 5)
        except Exception:
            raise AssertionError(f"the page never measured: {page_stats(browser)}, message "
                                 f"{browser.find_element('id', 'message').text!r}") from None
        first = page_stats(browser)
        wait.until(lambda _: page_stats(browser)["framesDecoded"] > first["framesDecoded"] + 5)
        return first, page_stats(browser)


def check_played(first: dict, later: dict) -> None:
    assert first["state"] == "connected"
    assert (first["videoWidth"], first["videoHeight"]) == (WIDTH, HEIGHT)
    assert first["codec"] in ("video/H264", "video/VP8"), first["codec"]
    assert later["currentTime"] > first["currentTime"]
    assert later["ages"] > first["ages"] and later["seq"] > first["seq"]
    assert later["measuredAt"] == "display"
    for stats in (first, later):
        assert 0 < stats["ageMs"] < AGE_SANITY_MS, stats


def test_chromium_plays_the_stream_and_measures_frame_age(daemon, folder):
    with fed_output(daemon.publish) as (output, address):
        first, later = watch_until_measured(folder, address)
    check_played(first, later)
    assert output.summary == f"webrtc: 1 viewer(s) served at {output.url}"
    assert "stylecast-webrtc" not in [thread.name for thread in threading.enumerate()]


def test_stylecast_sub_webrtc_serves_the_page(daemon, processes, folder):
    process = processes(daemon.publish, "--webrtc", "127.0.0.1:0")
    ready, _, _ = select.select([process.stderr], [], [], START_S)
    assert ready, "stylecast-sub never said where it serves"
    line = process.stderr.readline().rstrip("\n")
    match = SERVING.match(line)
    assert match, line
    check_played(*watch_until_measured(folder, (match[1], int(match[2]))))
    process.send_signal(signal.SIGINT)  # Ctrl-C: peer connections closed, loop and thread ended
    _, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0
    assert err == f"webrtc: 1 viewer(s) served at http://{match[1]}:{match[2]}/\n"


def test_no_flag_no_output():
    assert open_plugin() is None


def test_a_taken_port_is_one_clear_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^cannot serve WebRTC on 127\.0\.0\.1:{port} "
                           r"\(Address already in use\)$"):
            open_plugin("--webrtc", f"127.0.0.1:{port}")


def test_a_bad_address_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as usage:
        open_plugin("--webrtc", "localhost:http")
    assert usage.value.code == 2
    assert "expected HOST:PORT such as 127.0.0.1:8080, got 'localhost:http'" in (
        capsys.readouterr().err)


def test_media_stays_on_the_address_the_page_is_served_on():
    assert webrtc.ice_addresses("127.0.0.1") == ["127.0.0.1"]
    assert webrtc.ice_addresses("::1") == ["::1"]
    assert webrtc.ice_addresses("localhost") == ["127.0.0.1"]
    assert webrtc.ice_addresses("0.0.0.0") is None and webrtc.ice_addresses("::") is None


@pytest.fixture
def served():
    """An output serving on a free loopback port, fed nothing: its address."""
    output = open_plugin("--webrtc", "0")
    output.start(None)
    host, port = SERVING.match(f"serving WebRTC at {output.url}").groups()
    yield host, int(port)
    output.close(completed=True)


@pytest.mark.parametrize("body, headers, status, error", [
    (b'{"sdp": "v=0", "type": "offer"}', {"Content-Type": "text/plain"}, 415,
     "send the command as JSON (Content-Type: application/json)"),
    (b'{"sdp": "v=0", "type": "offer"}',
     {"Content-Type": "application/json", "Origin": "http://example.com"}, 403,
     "Origin 'http://example.com' is not this server"),
    (b'{"sdp": "v=0", "type": "answer"}', {"Content-Type": "application/json"}, 400,
     'expected {"sdp": "...", "type": "offer"}'),
])
def test_offers_it_cannot_use_are_refused(served, body, headers, status, error):
    response, data = request(served, "POST", "/offer", body, headers)
    assert (response.status, json.loads(data)) == (status, {"error": error})


def test_an_offer_without_video_is_refused(served):
    # A real offer, from aiortc's own peer connection, with only a data channel in it.
    import asyncio

    from aiortc import RTCConfiguration, RTCPeerConnection

    async def offer() -> dict:
        connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connection.createDataChannel("frames")
        await connection.setLocalDescription(await connection.createOffer())
        description = connection.localDescription
        await connection.close()
        return {"sdp": description.sdp, "type": description.type}

    status, reply = post_json(served, "/offer", asyncio.run(offer()))
    assert (status, reply) == (400, {
        "error": "the offer has no video that this server can send (H.264 or VP8)"})


def test_the_page_is_served():
    output = open_plugin("--webrtc", "0")
    output.start(None)
    try:
        address = SERVING.match(f"serving WebRTC at {output.url}").groups()
        response, body = request((address[0], int(address[1])), "GET", "/")
        assert response.status == 200 and body == webrtc.page_html()
        assert b"stylecastStats" in body
    finally:
        assert output.close(completed=True) == f"webrtc: 0 viewer(s) served at {output.url}"


def test_stylecast_sub_webrtc_ends_cleanly(daemon, processes):
    process = processes(daemon.publish, "--webrtc", "0", "--count", "5")
    out, err = process.communicate(timeout=START_S)
    lines = err.splitlines()
    assert process.returncode == 0, err
    assert SERVING.match(lines[0]) and lines[-1] == (
        f"webrtc: 0 viewer(s) served at http://{SERVING.match(lines[0])[1]}:"
        f"{SERVING.match(lines[0])[2]}/")
    assert out.startswith("summary: 5 frames")


def test_stylecast_sub_on_a_taken_port_exits_78(processes):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = processes("ipc:///nowhere", "--webrtc", str(port))
        _, err = process.communicate(timeout=START_S)
    assert process.returncode == 78
    assert err == (f"stylecast-sub: error: cannot serve WebRTC on 127.0.0.1:{port} "
                   "(Address already in use)\n")


MATCH_SCRIPT = """
const [origin, sentPts, shownPts] = arguments;
sentPts.forEach((pts, k) => remember({seq: k, rtp: pts % 2 ** 32, t_capture_unix_ns: 1}));
return shownPts.map((pts) => { const found = match((origin + pts) % 2 ** 32);
                               return found ? found.seq : null; });
"""


@pytest.mark.parametrize("dither", [PTS_DITHER_TICKS, 1])
def test_the_page_matches_shown_frames_to_sent_ones_by_rtp_timestamp(served, folder, dither):
    """The page's matcher (webrtc.html), given frames 1/30 s apart on a perfectly steady clock
    and an RTP origin near the 32-bit wrap: with the server's dither it finds each shown frame
    within a few frames and never a wrong one; without it the whole-frame shifts fit just as
    well, and it measures nothing rather than something wrong."""
    import random

    sent = [k * 3000 + random.randrange(dither) for k in range(60)]
    shown = sent[20:50]  # the page shows frames some time after the server said it sent them
    with driven_chromium(folder) as browser:
        browser.get(f"http://{served[0]}:{served[1]}/")
        found = browser.execute_script(MATCH_SCRIPT, 2**32 - 5000, sent, shown)
    if dither == 1:
        assert found == [None] * len(shown)
        return
    first = next(index for index, seq in enumerate(found) if seq is not None)
    assert first < 5 and found[first:] == list(range(20 + first, 50))


def synthetic_frames(output, stop: threading.Event, fps: float = 30.0) -> None:
    """Writes a moving gradient to the output, as stylecast-sub would a subscription."""
    import time

    import numpy as np

    from stylecast.stream.client import Frame

    ramp = np.add.outer(np.arange(HEIGHT), np.arange(WIDTH))[:, :, None]
    seq = 0
    while not stop.is_set():
        image = np.repeat((ramp + 4 * seq) % 256, 3, axis=2).astype(np.uint8)
        header = {"seq": seq, "t_capture_ns": time.monotonic_ns(),
                  "t_capture_unix_ns": time.time_ns()}
        output.write(Frame("stylized", header, b"", image, 0))
        seq += 1
        stop.wait(1 / fps)


def test_three_viewers_share_one_encoder():
    """Three real aiortc viewers all decode the stream while each frame is encoded once: more
    encoded frames go out than frames come in, and no more are encoded than come in."""
    output = open_plugin("--webrtc", "0")
    output.start(None)
    stop = threading.Event()
    feeder = threading.Thread(target=synthetic_frames, args=(output, stop), daemon=True)
    feeder.start()
    # benchmarks.consumer_viewers in a process of its own: its ICE candidates are gathered on
    # loopback only, which must not leak into this process
    viewers = ViewerProcess("webrtc", output.url, 3)
    try:
        viewers.ready(WAIT_S)
        viewers.start()
        before = output.stats
        stop.wait(2.0)
        report = viewers.stop()
        after = output.stats
        viewers.close()
        wait_until(lambda: output.stats["encoding_for"] == 0,
                   "the viewers left, and the encoder still encodes for them", WAIT_S, 0.1)
    finally:
        viewers.close()
        stop.set()
        feeder.join()
        output.close(completed=True)
    assert report["codec"] == "video/H264"
    for viewer in report["viewers"]:
        assert viewer["frames"] > 0 and viewer["size"] == [WIDTH, HEIGHT], viewer
    came, encoded, out = (after[k] - before[k]
                          for k in ("frames_in", "frames_encoded", "frames_handed_out"))
    assert 0 < encoded <= came < out, after


def encoded(index: int, keyframe: bool = False) -> Encoded:
    return Encoded(index, None, b"", keyframe)


def test_a_viewer_takes_frames_in_order_and_skips_only_to_a_keyframe():
    since_key = [encoded(10, keyframe=True)] + [encoded(k) for k in range(11, 16)]
    on_time = Cursor(13)
    on_time.chained = True
    assert next_frame(since_key, on_time).index == 14
    behind = Cursor(11)  # behind by four, but a P-frame cannot be skipped
    behind.chained = True
    assert next_frame(since_key, behind).index == 12
    before_the_key = Cursor(7)  # behind the newest keyframe: skips ahead to it
    before_the_key.chained = True
    assert next_frame(since_key, before_the_key).index == 10
    caught_up = Cursor(15)
    caught_up.chained = True
    assert next_frame(since_key, caught_up) is None


def test_a_new_viewer_starts_at_a_keyframe():
    since_key = [encoded(10, keyframe=True)] + [encoded(k) for k in range(11, 16)]
    joined = Cursor(15)  # joined after frame 15: waits for the next keyframe
    since_key.append(encoded(16))
    assert next_frame(since_key, joined) is None
    assert next_frame([encoded(17, keyframe=True)], joined).index == 17


def test_a_joining_viewer_gets_a_forced_keyframe_from_the_one_encoder():
    """The shared encoder (real libx264): each viewer's first frame is a keyframe, forced when
    it joins, and frames are encoded once however many viewers take them."""
    import asyncio
    import itertools

    import numpy as np

    from stylecast.stream.client import Frame
    from stylecast.stream.outputs.webrtc_encoder import SharedEncoder
    from stylecast.stream.outputs.webrtc_media import SharedPicture

    ticks = itertools.count()

    async def run() -> list:
        picture = SharedPicture(asyncio.get_running_loop())
        # 0.3 s a call: the second viewer joins 0.9 s after the first keyframe, past the
        # 0.5 s between forced keyframes and before the 1 s keyframe interval
        encoder = SharedEncoder(picture, clock=lambda: 0.3 * next(ticks))
        taken = []

        async def frame(seq: int, *cursors) -> None:
            image = np.full((HEIGHT, WIDTH, 3), seq * 8 % 256, dtype=np.uint8)
            picture.put(Frame("stylized", {"seq": seq, "t_capture_ns": seq}, b"", image, 0))
            for cursor in cursors:
                taken.append((cursor, await encoder.next_for(cursor)))

        first = encoder.join()
        for seq in range(1, 4):
            await frame(seq, first)
        second = encoder.join()
        for seq in range(4, 7):
            await frame(seq, first, second)
        await encoder.close()
        return [(cursor is first, got.index, got.keyframe) for cursor, got in taken], encoder

    taken, encoder = asyncio.run(asyncio.wait_for(run(), WAIT_S))
    assert taken[0] == (True, 1, True) and [t[2] for t in taken[1:3]] == [False, False]
    assert taken[3:5] == [(True, 4, True), (False, 4, True)]  # forced when the second joined
    assert encoder.encoded == 6 and encoder.handed_out == 9
