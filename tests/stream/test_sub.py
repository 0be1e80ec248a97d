"""stylecast-sub against real stylecastd processes on tiny models: in process (main() with
capsys) and as the installed entry point; its HTTP server read with a real HTTP client (and, where
Chromium is installed, rendered by a real browser); recordings read back with OpenCV and Pillow.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylecast.core.errors import ConfigError
from stylecast.stream.client import Frame
from stylecast.stream.outputs.browser import LatestJpeg
from stylecast.stream.outputs.recorder import VideoRecorder, open_recorder, partial_path
from stylecast.stream.outputs.window import unreachable_display
from stylecast.stream.security import write_key_pair
from stylecast.stream.sub import main

from support.browser import CHROMIUM_FLAGS, chromium
from support.page_server import get, serving_url
from support.small_disk import small_disk
from support.tiny_models import expected_stylized, write_tiny_model

SUB = Path(sys.executable).with_name("stylecast-sub")
SOURCE = "test://?width=64&height=48&fps=30"
WAIT_S = 30.0  # generous: a shared 2-core machine
SUMMARY_KEYS = {"frames", "fps", "age_ms_p50", "age_ms_p95", "gaps"}


@pytest.fixture
def model(folder):
    return write_tiny_model(folder / "invert.onnx", style="invert")


@pytest.fixture
def daemon(daemon_with, model):
    """A daemon whose frames already flow (READY=1 comes with the first published frame)."""
    started = daemon_with("--model", str(model), "--source", SOURCE)
    started.notify.wait_for("READY=1")
    return started


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_count_json_prints_frames_then_the_summary(daemon, capsys):
    assert main([daemon.publish, "--count", "5", "--json", "--timeout", str(WAIT_S)]) == 0
    out, err = capsys.readouterr()
    *frames, summary = json_lines(out)
    assert len(frames) == 5 and err == ""
    seqs = [line["seq"] for line in frames]
    assert seqs == list(range(seqs[0], seqs[0] + 5))  # a fast consumer gets every frame
    for line in frames:
        assert line["topic"] == "stylized" and line["style"] == "invert"
        assert (line["width"], line["height"], line["format"]) == (64, 48, "rgb24")
        assert line["bytes"] == 64 * 48 * 3 and 0 < line["age_ms"] < 10_000
    assert set(summary) >= SUMMARY_KEYS
    assert summary["frames"] == 5 and summary["gaps"] == 0 and summary["fps"] > 0
    assert 0 < summary["age_ms_p50"] <= summary["age_ms_p95"] < 10_000


def test_stats_topic_prints_the_stats_objects(daemon, capsys):
    assert main([daemon.publish, "--topic", "stats", "--count", "2", "--json"]) == 0
    *stats, summary = json_lines(capsys.readouterr().out)
    assert len(stats) == 2 and summary["frames"] == 2
    for document in stats:
        assert {"fps", "latency_ms", "dropped", "source"} <= set(document)
        assert document["style"] == "invert"


def test_the_entry_point_prints_a_line_a_second_and_a_summary(daemon, processes):
    process = processes(daemon.publish, "--count", "45", "--timeout", str(WAIT_S))
    out, err = process.communicate(timeout=WAIT_S + 30)
    assert process.returncode == 0, err
    *seconds, summary = out.strip().splitlines()
    assert seconds, out  # 45 frames at 30 fps take 1.5 s
    assert all("fps" in line and "64x48 rgb24" in line and "style invert" in line
               for line in seconds)
    assert summary.startswith("summary: 45 frames") and "gaps 0" in summary


def test_timeout_with_no_daemon_exits_1_with_one_line(folder, capsys):
    endpoint = f"ipc://{folder}/nobody"
    assert main([endpoint, "--timeout", "0.5"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"stylecast-sub: error: no frame from {endpoint} within 0.5 s\n"


def test_timeout_between_frames_ends_with_the_summary(daemon, capsys):
    pause = threading.Timer(1.5, daemon.request, args=({"cmd": "pause"},))
    pause.start()
    try:
        assert main([daemon.publish, "--json", "--timeout", "2"]) == 1
    finally:
        pause.cancel()
    out, err = capsys.readouterr()
    assert err.strip() == f"stylecast-sub: error: no frame from {daemon.publish} within 2 s"
    summary = json_lines(out)[-1]
    assert summary["frames"] >= 5 and set(summary) >= SUMMARY_KEYS


def test_record_video_file(daemon, folder, capsys):
    import cv2

    video = folder / "out" / "clip.mp4"
    assert main([daemon.publish, "--count", "20", "--json", "--record", str(video)]) == 0
    frames = json_lines(capsys.readouterr().out)[:-1]
    assert not list(video.parent.glob("*partial*"))
    capture = cv2.VideoCapture(str(video))
    # The rate comes from the frames' capture times (30 fps unless a busy machine dropped some).
    times = [line["t_capture_ns"] for line in frames]
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(19e9 / (times[-1] - times[0]),
                                                          rel=0.02)
    images = []
    while (read := capture.read())[0]:
        images.append(read[1][..., ::-1])  # OpenCV reads BGR
    capture.release()
    assert len(images) == 20 and images[0].shape == (48, 64, 3)
    expected = expected_stylized(frames[10]["frame"]).astype(int)
    error = np.abs(images[10].astype(int) - expected).mean()
    swapped = np.abs(images[10].astype(int) - expected[..., ::-1]).mean()
    assert error < 20 and error < swapped / 2, (error, swapped)  # lossy mp4v, RGB order kept


def test_record_png_folder(daemon, folder, capsys):
    from PIL import Image

    pngs = folder / "pngs"
    assert main([daemon.publish, "--count", "4", "--json", "--record", str(pngs)]) == 0
    frames = json_lines(capsys.readouterr().out)[:-1]
    files = sorted(pngs.iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png", "000003.png"]
    for file, line in zip(files, frames, strict=True):
        image = np.asarray(Image.open(file))
        np.testing.assert_array_equal(image, expected_stylized(line["frame"]))

    code = main([daemon.publish, "--count", "1", "--record", str(pngs)])
    assert code == 78 and "already holds PNG files" in capsys.readouterr().err


def test_video_recorder_resizes_and_keeps_an_unfinished_file_partial(folder):
    import cv2

    recorder = VideoRecorder(folder / "a.avi")
    for i, size in enumerate([(48, 64), (48, 64), (24, 32), (96, 128)]):
        recorder.write(np.full((*size, 3), 40 * i, np.uint8), t_capture_ns=i * 50_000_000)
    recorder.close()
    capture = cv2.VideoCapture(str(folder / "a.avi"))
    shapes = []
    while (read := capture.read())[0]:
        shapes.append(read[1].shape)
    assert shapes == [(48, 64, 3)] * 4
    assert 19 < capture.get(cv2.CAP_PROP_FPS) < 21  # 50 ms apart

    crashed = VideoRecorder(folder / "b.mp4")
    crashed.write(np.zeros((48, 64, 3), np.uint8), 0)
    crashed.close(completed=False)
    assert partial_path(folder / "b.mp4").exists() and not (folder / "b.mp4").exists()


def test_record_without_opencv_names_the_extra(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'stylecast\[video\]'"):
        open_recorder(folder / "clip.mp4")
    open_recorder(folder / "pngs").close()  # PNGs fall back to Pillow


@pytest.mark.parametrize(("record", "message"), [
    ("new/pngs/", "recording PNGs needs OpenCV or Pillow: pip install 'stylecast[video]' or "
                  "'stylecast[pillow]'"),
    ("new/clip.mp4", "recording video needs OpenCV: pip install 'stylecast[video]'"),
])
def test_a_recording_without_its_library_leaves_nothing_behind(folder, monkeypatch, capsys,
                                                               record, message):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert main([f"ipc://{folder}/nobody", "--record", str(folder / record)]) == 78
    assert capsys.readouterr().err == f"stylecast-sub: error: {message}\n"
    assert list(folder.iterdir()) == []


def test_recorders_that_wrote_nothing_remove_the_folders_they_made(folder):
    pytest.importorskip("cv2")
    assert VideoRecorder(folder / "a" / "b" / "clip.mp4").close() is None
    assert open_recorder(folder / "c" / "pngs").close() is None
    (folder / "mine").mkdir()
    open_recorder(folder / "mine").close()
    assert [p.name for p in folder.iterdir()] == ["mine"]  # a folder that was there stays


@pytest.mark.parametrize("name", ["clip.mkv", "pngs"])
def test_duration_records_that_long_says_where_and_what_and_exits_0(daemon, folder, capsys,
                                                                    name):
    cv2 = pytest.importorskip("cv2")
    target = folder / "out" / name
    started = time.monotonic()
    assert main([daemon.publish, "--duration", "1", "--json", "--record", str(target)]) == 0
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    frames = json_lines(out)[:-1]
    first, last = err.strip().splitlines()
    if name == "pngs":
        assert first == f"recording to {target}/ as numbered PNGs (000000.png, ...)"
        assert len(list(target.glob("*.png"))) == len(frames)
        assert not list(target.glob(".*"))  # no temporary left
        assert last.startswith(f"recorded {len(frames)} PNGs (")
    else:
        assert first == f"recording to {target} (as clip.partial.mkv until it ends)"
        capture = cv2.VideoCapture(str(target))
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == len(frames)
        capture.release()
        assert not partial_path(target).exists()
        assert re.fullmatch(rf"recorded {len(frames)} frames \(\d\.\d s at \d+\.\d\d fps\) "
                            rf"to {re.escape(str(target))}", last), last
    # 30 fps for one second: fewer on a busy machine, never more than the second holds.
    span_s = (frames[-1]["t_capture_ns"] - frames[0]["t_capture_ns"]) / 1e9
    assert 10 <= len(frames) <= 32 and span_s < 1.0 + 2 / 30, (len(frames), span_s)
    assert elapsed < 1.0 + WAIT_S


def test_a_full_disk_while_recording_pngs_is_one_line_and_keeps_whole_pngs(daemon, folder,
                                                                          capsys):
    from PIL import Image

    with small_disk(folder / "disk", "128k") as disk:
        pngs = disk / "pngs"
        code = main([daemon.publish, "--record", str(pngs), "--timeout", str(WAIT_S)])
        out, err = capsys.readouterr()
        files = sorted(pngs.iterdir())
        assert files and all(f.name.endswith(".png") and not f.name.startswith(".")
                             for f in files)
        for file in files:
            Image.open(file).load()  # every PNG whole
    assert code == 1, err
    *_, said, error = err.strip().splitlines()
    assert said == f"recorded {len(files)} PNGs (" + said.split("(", 1)[1]
    assert re.fullmatch(rf"stylecast-sub: error: {re.escape(str(pngs))}/\d{{6}}\.png: disk full: "
                        r"about [\d.]+ kB needed, [\d.]+ (kB|bytes) free in .*", error), error
    assert out.strip().splitlines()[-1].startswith("summary: ")


def test_a_nearly_full_disk_stops_a_video_recording_and_keeps_it_playable(daemon, folder,
                                                                         capsys):
    cv2 = pytest.importorskip("cv2")
    with small_disk(folder / "disk", "8m") as disk:  # under the 16 MB kept free for the index
        video = disk / "clip.mp4"
        assert main([daemon.publish, "--record", str(video), "--timeout", str(WAIT_S)]) == 1
        err = capsys.readouterr().err
        capture = cv2.VideoCapture(str(video))
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        readable = capture.read()[0]
        capture.release()
        assert not partial_path(video).exists()
    *_, said, error = err.strip().splitlines()
    assert readable and count >= 10
    assert said.startswith(f"recorded {int(count)} frames (")
    assert error.startswith(f"stylecast-sub: error: {video}: disk nearly full: ")
    assert f"stopped recording after {int(count)} frames" in error


def test_latest_jpeg_encodes_once_and_passes_jpeg_through():
    import simplejpeg

    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = 200
    header = {"v": 1, "seq": 7, "width": 64, "height": 48, "format": "rgb24",
              "t_capture_ns": time.monotonic_ns()}
    latest = LatestJpeg()
    assert latest.latest() is None and latest.wait_newer(0, 0.05) is None
    latest.put(Frame("stylized", header, image.tobytes(), image, time.monotonic_ns()))
    number, seq, jpeg = latest.wait_newer(0, 1.0)
    assert seq == 7 and latest.latest() is jpeg  # encoded once, shared by every client
    decoded = simplejpeg.decode_jpeg(jpeg, colorspace="RGB")
    assert np.abs(decoded.astype(int) - image).mean() < 3
    assert latest.wait_newer(number, 0.05) is None  # never the same frame twice

    payload = simplejpeg.encode_jpeg(image, colorspace="RGB")
    latest.put(Frame("stylized", {**header, "format": "jpeg"}, payload, image, 0))
    assert latest.wait_newer(number, 1.0)[2] is payload  # the daemon's bytes, untouched
    latest.close()
    assert latest.wait_newer(0, 1.0) is None


def read_parts(response: http.client.HTTPResponse, boundary: bytes, count: int) -> list:
    """`count` parts of a multipart/x-mixed-replace body: (headers, body) each."""
    parts = []
    while len(parts) < count:
        line = response.readline()
        if line == b"\r\n":
            continue
        assert line == b"--" + boundary + b"\r\n", line
        headers = {}
        while (line := response.readline()) != b"\r\n":
            name, value = line.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, response.read(int(headers["content-length"]))))
    return parts


def open_jpeg(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


def test_http_page_stream_snapshot_and_stats(daemon, folder, processes):
    video = folder / "served.avi"
    process = processes(daemon.publish, "--http", "127.0.0.1:0", "--record", str(video))
    address = serving_url(process)

    response, page = get(address, "/")
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/html")
    assert b'<img id="stream" src="stream.mjpg"' in page and b"stats.json" in page

    # A browser that leaves in the middle of a frame.
    quitter = socket.create_connection(address, timeout=WAIT_S)
    quitter.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"multipart/x-mixed-replace" in quitter.recv(4096)
    quitter.close()

    connection = http.client.HTTPConnection(*address, timeout=WAIT_S)
    connection.request("GET", "/stream.mjpg")
    stream = connection.getresponse()
    content_type = stream.getheader("Content-Type")
    assert stream.status == 200 and content_type.startswith("multipart/x-mixed-replace;")
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = read_parts(stream, boundary, 4)
    seqs = [int(headers["x-stylecast-seq"]) for headers, _ in parts]
    assert seqs == sorted(set(seqs)), seqs  # each part a newer frame, never one twice
    for headers, body in parts:
        assert headers["content-type"] == "image/jpeg"
        assert open_jpeg(body).size == (64, 48)

    response, snapshot = get(address, "/snapshot.jpg")
    assert response.status == 200 and response.getheader("Content-Type") == "image/jpeg"
    assert open_jpeg(snapshot).size == (64, 48)
    response, body = get(address, "/stats.json")
    stats = json.loads(body)
    assert response.status == 200 and stats["http_clients"] == 1  # the quitter is gone
    assert stats["delivered"] > 0 and stats["gaps"] == 0 and stats["last"]["width"] == 64
    assert stats["endpoint"] == daemon.publish
    assert get(address, "/nope")[0].status == 404
    connection.close()

    process.send_signal(signal.SIGTERM)  # ends like Ctrl-C: summary, recording finished
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("summary: ")
    assert video.exists() and not partial_path(video).exists()


def test_show_without_a_display_exits_78_with_one_line(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["tcp://127.0.0.1:5555", "--show"]) == 78
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "display" in err and "--http" in err


def test_show_with_an_unreachable_display_exits_78(monkeypatch, capsys):
    """OpenCV's Qt backend would abort the process on it; we say so in one line instead."""
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", f":{free_display_number()}")
    assert main(["tcp://127.0.0.1:5555", "--show"]) == 78
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "cannot open the display DISPLAY=:" in err


def test_display_probe_finds_a_listening_x_server(monkeypatch):
    """A socket where an X server would listen (Linux's abstract namespace, so nothing is left
    in /tmp/.X11-unix) counts as a display; `host:N` is probed on TCP port 6000+N."""
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    number = free_display_number()
    with socket.socket(socket.AF_UNIX) as fake_x:
        fake_x.bind(f"\0/tmp/.X11-unix/X{number}")
        fake_x.listen()
        monkeypatch.setenv("DISPLAY", f":{number}.0")
        assert unreachable_display() is None
    assert unreachable_display() == f"DISPLAY=:{number}.0"
    with socket.socket() as fake_x:
        fake_x.bind(("127.0.0.1", 0))
        fake_x.listen()
        port = fake_x.getsockname()[1]
        if port < 6000:
            pytest.skip("the kernel gave a port below 6000; the TCP probe needs 6000+N")
        monkeypatch.setenv("DISPLAY", f"127.0.0.1:{port - 6000}")
        assert unreachable_display() is None
    monkeypatch.setenv("DISPLAY", "garbage")
    assert unreachable_display() == "DISPLAY=garbage"


def free_display_number() -> int:
    """An X display number nobody listens on here."""
    for number in range(4711, 4800):
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(f"\0/tmp/.X11-unix/X{number}") != 0 and not Path(
                    f"/tmp/.X11-unix/X{number}").exists():
                return number
    raise AssertionError("no free X display number")


def test_curve_key_flags(folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tcp://127.0.0.1:5555", "--server-key", "server.key"])
    assert exit_info.value.code == 2
    assert "--client-key" in capsys.readouterr().err
    missing = folder / "server.key"
    client = write_key_pair(folder, "client")
    assert main(["tcp://127.0.0.1:5555", "--server-key", str(missing), "--client-key",
                 str(client.secret_file)]) == 78
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(missing) in err


def test_the_page_renders_in_chromium(daemon_with, model, folder, processes):
    browser = chromium()
    from PIL import Image

    daemon = daemon_with("--model", str(model), "--source", "test://?width=320&height=240&fps=30")
    process = processes(daemon.publish, "--http", "127.0.0.1:0")
    host, port = serving_url(process)
    shot = folder / "page.png"
    profile = folder / "chromium-profile"  # a new, empty profile for every run
    profile.mkdir()
    browser = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=640,480", "--virtual-time-budget=3000", f"http://{host}:{port}/"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(folder)})
    assert browser.returncode == 0 and shot.exists(), browser.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The page alone is dark grey with light text; the test card brings saturated colours.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 100).sum() > 5000, "the stream did not show in the page"
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0 and "summary: " in out
