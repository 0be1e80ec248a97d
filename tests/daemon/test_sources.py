"""Frame sources: test pattern, video files and GIFs, URI validation, the OpenCV captures and the
picamera2 adapter.

Real parts: the test pattern, mp4/GIF files written here and read back through OpenCV (FFMPEG)
and Pillow, skimage's own animated GIF, OpenCV's V4L2 and FFMPEG backends failing on a missing
camera and a refused RTSP connection. Not run here: a real camera (V4L2, CSI, Pi), GStreamer
(this OpenCV is built without it: its ConfigError and the pipeline strings are tested) and
picamera2/libcamera (not installable here: our adapter's logic is run against a small fake
Picamera2 that has only what the adapter calls).

OpenCV is an optional extra (stylecast[video]): without it only the tests marked needs_opencv
are skipped (they write or decode videos, or drive OpenCV's captures); the rest run, including
those that check what happens when OpenCV is missing.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import socket
import sys
import time
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from stylecast.core.errors import ConfigError, StylecastError
from stylecast.daemon.sources import (
    SCHEMES,
    Captured,
    FrameSource,
    SourceEnded,
    SourceError,
    SourceStalled,
    base,
    check_source_uri,
    open_source,
    pattern,
    video_file,
)
from stylecast.daemon.sources.base import redact
from stylecast.daemon.sources.opencv_capture import (
    APPSINK,
    OpenCvSource,
    csi_pipeline,
    has_gstreamer,
    to_rgb,
    v4l2_sensor_ns,
    with_appsink,
)

try:
    import cv2
except ImportError:  # OpenCV is an optional extra: stylecast[video]
    cv2 = None

needs_opencv = pytest.mark.skipif(
    cv2 is None,
    reason="OpenCV (cv2) is not installed (pip install 'stylecast[video]'): this test writes or "
    "decodes video through OpenCV, or drives an OpenCV capture",
)


def read_all(source: FrameSource, limit: int = 1000) -> list[Captured]:
    frames = []
    with pytest.raises(SourceEnded):
        while len(frames) < limit:
            frames.append(source.read(timeout_s=5.0))
    return frames


@pytest.fixture
def pacing(monkeypatch) -> list[float]:
    """Record the interval every source asks its pacer for, without sleeping."""
    intervals: list[float] = []
    monkeypatch.setattr(base.Pacer, "wait", lambda self, interval_s: intervals.append(interval_s))
    return intervals


# --- test:// -------------------------------------------------------------------------------


def test_pattern_frames_are_rgb_uint8_contiguous_of_the_asked_size():
    with open_source("test://?width=320&height=200&fps=0") as source:
        frame = source.read(timeout_s=1.0)
    assert frame.image.shape == (200, 320, 3)
    assert frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous
    # Colourful: the three channels are not one gray image.
    channels = frame.image.reshape(-1, 3).astype(int)
    assert np.abs(channels[:, 0] - channels[:, 1]).mean() > 20
    assert np.abs(channels[:, 1] - channels[:, 2]).mean() > 20


def test_pattern_moves_smoothly_and_is_structure_not_noise():
    with open_source("test://?width=320&height=240&fps=0") as source:
        frames = [source.read(timeout_s=1.0).image.astype(int) for _ in range(5)]
    for before, after in itertools.pairwise(frames):
        assert np.abs(after - before).mean() > 1  # it moves
    # Neighbouring pixels are alike (noise would differ by ~85 on average).
    image = frames[0]
    assert np.abs(np.diff(image, axis=1)).mean() < 12
    assert np.abs(np.diff(image, axis=0)).mean() < 12
    # The motion is a small shift of the same picture: frame 1 is frame 0 moved by the path.
    (top0, left0), (top1, left1) = (pattern.window_offset(i, 240, 320) for i in (0, 1))
    dy, dx = top1 - top0, left1 - left0
    assert 0 < abs(dy) + abs(dx) <= 10
    shifted = frames[0][max(dy, 0):240 + min(dy, 0), max(dx, 0):320 + min(dx, 0)]
    moved = frames[1][max(-dy, 0):240 + min(-dy, 0), max(-dx, 0):320 + min(-dx, 0)]
    np.testing.assert_array_equal(shifted, moved)


def test_pattern_held_still_and_with_camera_noise():
    """motion=0: every frame the same card; noise=N: the same card with a new +-N noise each
    frame, as a still scene comes from a real camera."""
    with open_source("test://?width=64&height=48&fps=0&motion=0") as source:
        still = [source.read(timeout_s=1.0).image for _ in range(3)]
        assert "still" in source.description
    card = pattern.draw_card(48, 64)
    assert all(np.array_equal(frame, card) for frame in still)
    with open_source("test://?width=64&height=48&fps=0&motion=0&noise=6") as source:
        noisy = [source.read(timeout_s=1.0).image.astype(int) for _ in range(3)]
        assert "noise 6" in source.description
    for before, after in itertools.pairwise(noisy):
        assert 1 < np.abs(after - before).mean() < 6  # a different noise in every frame
    for frame in noisy:
        assert np.abs(frame - card).max() <= 6 and np.abs(frame - card).mean() > 1


def test_pattern_timestamps_increase_on_both_clocks():
    with open_source("test://?width=64&height=48&fps=0") as source:
        before = time.monotonic_ns()
        frames = [source.read(timeout_s=1.0) for _ in range(20)]
    stamps = [f.t_capture_ns for f in frames]
    assert stamps[0] >= before and stamps[-1] <= time.monotonic_ns()
    assert all(a <= b for a, b in itertools.pairwise(stamps))
    assert stamps[-1] > stamps[0]
    walls = [f.t_capture_unix_ns for f in frames]
    assert all(a <= b for a, b in itertools.pairwise(walls))
    assert abs(walls[0] - time.time_ns()) < 60 * 10**9


def test_pattern_frames_belong_to_the_caller():
    with open_source("test://?width=96&height=64&fps=0") as source:
        first = source.read(timeout_s=1.0).image
        expected = first.copy()
        second = source.read(timeout_s=1.0).image
        assert not np.shares_memory(first, second)
        first[:] = 0  # a caller scribbling on its frame must not reach the source's pattern
        later = [source.read(timeout_s=1.0).image for _ in range(pattern.FRAMES_PER_CYCLE - 1)]
    np.testing.assert_array_equal(later[-1], expected)  # one full cycle later: frame 0 again
    assert not first.any()  # ...and the source never wrote into a frame it handed out


def test_pattern_is_paced_at_its_fps():
    with open_source("test://?width=64&height=48&fps=20") as source:
        started = time.monotonic()
        for _ in range(10):
            source.read(timeout_s=1.0)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4  # 9 intervals of 50 ms after the first frame; no upper bound here


def test_pattern_fps_zero_never_sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(base.time, "sleep", slept.append)
    with open_source("test://?width=64&height=48&fps=0") as source:
        for _ in range(10):
            source.read(timeout_s=1.0)
    assert slept == []
    with open_source("test://?width=64&height=48&fps=1") as source:
        for _ in range(3):  # the first frame at once, then one sleep before each
            source.read(timeout_s=1.0)
    assert len(slept) == 2 and all(s > 0.5 for s in slept)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_pacer_keeps_a_deadline_and_never_bursts_after_a_late_caller(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(base, "time", clock)
    pacer = base.Pacer()
    pacer.wait(0.1)  # the first frame is due at once
    pacer.wait(0.1)
    clock.now += 0.03  # the caller took 30 ms: only the rest of the interval is slept
    pacer.wait(0.1)
    assert clock.slept == [0.1, 0.07]
    clock.now += 0.35  # the caller fell far behind: that frame at once...
    pacer.wait(0.1)
    assert clock.slept == [0.1, 0.07]
    pacer.wait(0.1)  # ...and the next one a full interval later, not a catch-up burst
    assert clock.slept == [0.1, 0.07, 0.1]


def test_captured_now_puts_a_sensor_timestamp_on_the_wall_clock_too():
    sensor_ns = time.monotonic_ns() - 10 * 10**9  # exposed 10 s ago
    frame = Captured.now(np.zeros((2, 2, 3), np.uint8), sensor_ns)
    assert frame.t_capture_ns == sensor_ns
    assert abs((time.time_ns() - frame.t_capture_unix_ns) - 10 * 10**9) < 10**9


# --- file:// -------------------------------------------------------------------------------

MP4_FPS = 25
MP4_FRAMES = 8
GIF_DURATIONS_MS = [50, 60, 70, 80, 90]


@pytest.fixture(scope="module")
def photo_frames() -> list[np.ndarray]:
    """A camera pan over the astronaut photo: 120x160 RGB crops moving a few pixels a frame."""
    from skimage import data

    image = data.astronaut()
    return [np.ascontiguousarray(image[100 + 4 * i:220 + 4 * i, 150 + 6 * i:310 + 6 * i])
            for i in range(MP4_FRAMES)]


@pytest.fixture(scope="module")
def mp4_path(tmp_path_factory, photo_frames) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), MP4_FPS, (160, 120))
    assert writer.isOpened()
    for frame in photo_frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def gif_frames() -> list[np.ndarray]:
    """Cat photo crops, each reduced to 64 colours so that GIF stores them exactly."""
    from PIL import Image
    from skimage import data

    image = data.chelsea()
    frames = []
    for i in range(len(GIF_DURATIONS_MS)):
        crop = Image.fromarray(np.ascontiguousarray(image[20 + 5 * i:140 + 5 * i,
                                                          30 + 8 * i:190 + 8 * i]))
        frames.append(np.array(crop.quantize(64, dither=Image.Dither.NONE).convert("RGB")))
    return frames


@pytest.fixture(scope="module")
def gif_path(tmp_path_factory, gif_frames) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("gif") / "cat.gif"
    images = [Image.fromarray(frame) for frame in gif_frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=GIF_DURATIONS_MS,
                   loop=0)
    return path


def skimage_gif() -> Path:
    from skimage import data

    return Path(data.__file__).parent / "no_time_for_that_tiny.gif"


@needs_opencv
def test_mp4_frames_match_what_was_written_then_the_file_ends(mp4_path, photo_frames, pacing):
    with open_source(f"file://{mp4_path}") as source:
        frames = read_all(source)
        assert "160x120" in source.description and "25 fps" in source.description
    assert len(frames) == MP4_FRAMES
    for i, (got, written) in enumerate(zip(frames, photo_frames, strict=True)):
        assert got.image.shape == (120, 160, 3) and got.image.dtype == np.uint8
        assert got.image.flags.c_contiguous
        error = np.abs(got.image.astype(int) - written).mean()
        assert error < 10, f"frame {i}: mean abs error {error:.1f}"  # mp4v is lossy
        neighbour = photo_frames[(i + 1) % MP4_FRAMES]
        assert error < np.abs(got.image.astype(int) - neighbour).mean()  # order and RGB kept
    assert pacing[1:] == pytest.approx([1 / MP4_FPS] * (MP4_FRAMES - 1))


@needs_opencv
def test_mp4_loop_goes_on_past_the_end(mp4_path, pacing):
    with open_source(f"file://{mp4_path}?loop=1") as source:
        frames = [source.read(timeout_s=5.0).image for _ in range(2 * MP4_FRAMES + 3)]
    np.testing.assert_array_equal(frames[MP4_FRAMES], frames[0])
    np.testing.assert_array_equal(frames[2 * MP4_FRAMES + 2], frames[2])
    assert pacing[1:] == pytest.approx([1 / MP4_FPS] * (len(frames) - 1))


@needs_opencv
def test_file_fps_overrides_the_files_rate(mp4_path, pacing):
    with open_source(f"file://{mp4_path}?fps=10") as source:
        read_all(source)
    assert pacing == pytest.approx([0.1] * MP4_FRAMES)
    pacing.clear()
    with open_source(f"file://{mp4_path}?fps=0") as source:
        read_all(source)
        assert "unpaced" in source.description
    assert pacing == [0.0] * MP4_FRAMES


@needs_opencv
def test_file_is_paced_in_real_time(mp4_path):
    with open_source(f"file://{mp4_path}") as source:
        started = time.monotonic()
        read_all(source)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9 * (MP4_FRAMES - 1) / MP4_FPS  # a lower bound only


@needs_opencv
def test_gif_frames_and_durations_through_opencv(gif_path, gif_frames, pacing):
    with open_source(f"file://{gif_path}?loop=0") as source:  # once, though the GIF loops
        frames = read_all(source)
        assert isinstance(source._decoder, video_file.OpenCvDecoder)
    assert len(frames) == len(gif_frames)
    for got, written in zip(frames, gif_frames, strict=True):
        np.testing.assert_array_equal(got.image, written)
    # Each frame is due when the previous one's duration is over.
    assert pacing[1:] == pytest.approx([d / 1000 for d in GIF_DURATIONS_MS[:-1]])


def test_gif_falls_back_to_pillow_without_opencv(gif_path, gif_frames, pacing, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with open_source(f"file://{gif_path}?loop=1") as source:
        frames = [source.read(timeout_s=5.0) for _ in range(len(gif_frames) + 2)]
        assert "looping" in source.description
    for got, written in zip(frames, gif_frames + gif_frames[:2], strict=True):
        np.testing.assert_array_equal(got.image, written)
        assert got.image.flags.c_contiguous
    durations = [d / 1000 for d in GIF_DURATIONS_MS]
    # After the last frame's 90 ms the loop starts over (the next pass's first frame has no
    # predecessor in its pass: the file's average rate stands in for it).
    assert pacing[1:5] == pytest.approx(durations[:4])
    assert pacing[6] == pytest.approx(durations[0])


@needs_opencv
def test_both_gif_decoders_agree_on_skimages_animated_gif(monkeypatch, pacing):
    uri = f"file://{skimage_gif()}?loop=0"  # once: the GIF itself loops forever
    with open_source(uri) as source:
        by_opencv = [f.image for f in read_all(source)]
    monkeypatch.setitem(sys.modules, "cv2", None)
    with open_source(uri) as source:
        by_pillow = [f.image for f in read_all(source)]
    assert len(by_opencv) == len(by_pillow) > 10
    for a, b in zip(by_opencv, by_pillow, strict=True):
        np.testing.assert_array_equal(a, b)


def test_video_without_opencv_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    # Only the name counts: without OpenCV no decoder is tried, so this runs where OpenCV (and
    # the mp4_path fixture, which OpenCV writes) is missing too.
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    source = open_source(f"file://{video}")
    with pytest.raises(ConfigError, match=r"reading video files needs OpenCV: pip install "
                       r"'stylecast\[video\]'$"):
        source.open()
    source.close()


@needs_opencv
def test_relative_file_uri(mp4_path, monkeypatch, pacing):
    monkeypatch.chdir(mp4_path.parent.parent)
    relative = f"{mp4_path.parent.name}/{mp4_path.name}"
    with open_source(f"file://{relative}") as source:
        assert len(read_all(source)) == MP4_FRAMES
    monkeypatch.chdir(mp4_path.parent)
    with open_source(f"file://{mp4_path.name}") as source:
        assert len(read_all(source)) == MP4_FRAMES


def loop_gif(path: Path, frames: list[np.ndarray], **loop: int) -> Path:
    """Write `frames` as a GIF, with a NETSCAPE2.0 loop count if `loop=N` is given."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, **loop)
    return path


def test_gif_loop_count_is_read_from_the_file_as_pillow_reads_it(gif_frames, tmp_path):
    from PIL import Image

    files = [skimage_gif(), loop_gif(tmp_path / "once.gif", gif_frames),
             loop_gif(tmp_path / "forever.gif", gif_frames, loop=0),
             loop_gif(tmp_path / "three.gif", gif_frames, loop=2)]
    counts = [video_file.gif_loop_count(path) for path in files]
    assert counts == [0, None, 0, 2]
    for path, count in zip(files, counts, strict=True):
        with Image.open(path) as image:
            assert image.info.get("loop") == count
    (tmp_path / "clip.gif").write_bytes(b"not a gif at all")
    assert video_file.gif_loop_count(tmp_path / "clip.gif") is None


@pytest.mark.parametrize("decoder", ["opencv", "pillow"])
def test_a_gif_without_loop_option_follows_its_own_loop_flag(gif_frames, tmp_path, pacing,
                                                            monkeypatch, caplog, decoder):
    if decoder == "pillow":
        monkeypatch.setitem(sys.modules, "cv2", None)
    elif cv2 is None:
        pytest.skip("OpenCV is not installed")
    from PIL import Image

    n = len(gif_frames)
    forever = f"file://{skimage_gif()}"  # scikit-image's own animated GIF: loop count 0
    with Image.open(skimage_gif()) as image:
        skimage_frames = image.n_frames
    with open_source(forever) as source:
        frames = [source.read(timeout_s=5.0).image for _ in range(3 * skimage_frames + 1)]
        assert "looping (the GIF's own loop flag)" in source.description
    np.testing.assert_array_equal(frames[-1], frames[0])
    caplog.set_level(logging.INFO, logger="stylecast.daemon.sources.video_file")
    three = f"file://{loop_gif(tmp_path / 'three.gif', gif_frames, loop=2)}"
    with open_source(three) as source:
        assert len(read_all(source)) == 3 * n
        assert "plays 3 times (the GIF's own loop count)" in source.description
    once = f"file://{loop_gif(tmp_path / 'once.gif', gif_frames)}"
    with open_source(once) as source:
        assert len(read_all(source)) == n
    with open_source(f"{forever}?loop=0") as source:  # the URI's loop wins
        read_all(source)
    ended = [r.getMessage() for r in caplog.records if "ended after" in r.getMessage()]
    assert ended == [
        f"{three} ended after {3 * n} frames (3 plays, its own loop count); add ?loop=1 to "
        "repeat it",
        f"{once} ended after {n} frames; add ?loop=1 to repeat it",
        f"{forever}?loop=0 ended after {skimage_frames} frames; set loop=1 in its URI to "
        "repeat it",
    ]


@needs_opencv
def test_a_video_without_loop_plays_once_and_says_so_when_it_ends(mp4_path, pacing, caplog):
    caplog.set_level(logging.INFO, logger="stylecast.daemon.sources.video_file")
    with open_source(f"file://{mp4_path}?fps=0") as source:
        assert len(read_all(source)) == MP4_FRAMES
        assert "looping" not in source.description
    assert [r.getMessage() for r in caplog.records if "ended after" in r.getMessage()] == [
        f"file://{mp4_path}?fps=0 ended after {MP4_FRAMES} frames; add &loop=1 to repeat it"]


def test_missing_file_is_a_config_error_at_open_naming_it(tmp_path):
    missing = tmp_path / "nope.mp4"
    source = open_source(f"file://{missing}?loop=1")  # constructing opens nothing
    with pytest.raises(ConfigError, match=str(missing)) as err:
        source.open()
    assert "\n" not in str(err.value)
    source.close()
    source.close()  # idempotent after a failed open


@needs_opencv
def test_a_file_opencv_cannot_decode_is_a_config_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(ConfigError, match="cannot decode"):
        open_source(f"file://{path}").open()


# --- URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("uri", "names"), [
    ("test://?width=abc", ["'width' = 'abc'", "valid integer"]),
    ("test://?width=640&colour=red", ["'colour' is not known", "width, height, fps"]),
    ("test://?fps=-1", ["'fps' = '-1'", "greater than or equal to 0"]),
    ("test://?fps=1&fps=2", ["'fps' is given twice"]),
    ("test://?noise=65", ["'noise' = '65'", "less than or equal to 64"]),
    ("test://?motion=sometimes", ["'motion' = 'sometimes'", "valid boolean"]),
    ("test://pattern", ["'pattern'"]),
    ("webcam://0", ["unknown scheme", "test://", "picamera2://"]),
    ("/data/clip.mp4", ["unknown scheme", "file://PATH"]),
    ("file://", ["no file path"]),
    ("file://clip.mp4?loop=sometimes", ["'loop' = 'sometimes'", "valid boolean"]),
    ("file://clip.mp4?speed=2", ["'speed' is not known", "loop, fps"]),
    ("v4l2://0", ["v4l2:///dev/video0"]),
    ("v4l2:///dev/video0?fourcc=MJPEG", ["'fourcc' = 'MJPEG'", "four-character"]),
    ("v4l2:///dev/video0?width=0", ["'width' = '0'"]),
    ("csi://zero", ["camera number 'zero'"]),
    ("csi://0?flip=8", ["'flip' = '8'", "less than or equal to 7"]),
    ("picamera2://0?fps=fast", ["'fps' = 'fast'"]),
    ("picamera2://0?format=RGB888", ["'format' is not known"]),
    ("gst://", ["no pipeline"]),
    ("rtsp:///stream", ["no host"]),
])
def test_bad_uris_are_one_line_config_errors_naming_the_bad_part(uri, names):
    with pytest.raises(ConfigError) as err:
        check_source_uri(uri)
    message = str(err.value)
    assert message.startswith(f"source '{uri}'")
    assert "\n" not in message
    for name in names:
        assert name in message
    assert err.value.exit_code == 78
    with pytest.raises(ConfigError):
        open_source(uri)


@pytest.mark.parametrize(("uri", "kind", "description"), [
    ("test://", "TestPatternSource", "test pattern 640x480 @ 30 fps"),
    ("TEST://?width=320&height=240&fps=0", "TestPatternSource", "test pattern 320x240 @ unpaced"),
    ("file:///data/clip.mp4?loop=1", "VideoFileSource", "file /data/clip.mp4, looping"),
    ("file://clips/a%20b.gif?fps=12.5", "VideoFileSource", "file clips/a b.gif"),
    ("v4l2:///dev/video0?width=1280&height=720&fps=30&fourcc=MJPG", "V4l2Source",
     "v4l2 camera /dev/video0"),
    ("rtsp://admin:secret@192.168.1.20:554/stream1?channel=1", "RtspSource",
     "stream rtsp://admin:***@192.168.1.20:554/stream1?channel=1"),
    ("rtsps://cam.local/live", "RtspSource", "stream rtsps://cam.local/live"),
    ("gst://videotestsrc ! videoconvert", "GstreamerSource", "GStreamer pipeline"),
    ("csi://1?width=1920&height=1080&fps=60&flip=2", "GstreamerSource",
     "CSI camera 1 1920x1080 @ 60 fps"),
    ("csi://", "GstreamerSource", "CSI camera 0 1280x720 @ 30 fps"),
    ("picamera2://", "Picamera2Source", "Pi camera 0 640x480 @ 30 fps"),
    ("picamera2://1?width=1280&height=720&fps=50", "Picamera2Source",
     "Pi camera 1 1280x720 @ 50 fps"),
])
def test_good_uris_make_their_source_without_opening_it(uri, kind, description):
    check_source_uri(uri)
    source = open_source(uri)
    assert type(source).__name__ == kind
    assert source.uri == uri
    assert source.description == description
    source.close()  # safe on a source never opened


def test_every_scheme_is_known_and_listed():
    assert SCHEMES == ("test", "file", "v4l2", "rtsp", "rtsps", "gst", "csi", "picamera2")
    for scheme in SCHEMES:
        with contextlib.suppress(ConfigError):
            open_source(f"{scheme}://x")
        with pytest.raises(ConfigError) as err:
            open_source(f"no{scheme}://x")
        assert all(f"{known}://" in str(err.value) for known in SCHEMES)


def test_error_classes():
    assert issubclass(SourceStalled, SourceError)
    assert issubclass(SourceError, StylecastError) and SourceError("x").exit_code == 1
    assert not issubclass(SourceEnded, StylecastError)


# --- OpenCV captures -------------------------------------------------------------------------


@needs_opencv
def test_v4l2_missing_device_is_a_source_error_at_once():
    source = open_source("v4l2:///dev/video99?width=640&height=480")
    started = time.monotonic()
    with pytest.raises(SourceError, match="/dev/video99"):
        source.open()
    assert time.monotonic() - started < 30  # generous: it must not hang
    source.close()


@needs_opencv
def test_v4l2_device_opencv_cannot_open_is_a_source_error(tmp_path):
    not_a_camera = tmp_path / "video0"
    not_a_camera.write_bytes(b"")
    with pytest.raises(SourceError, match="cannot open"):
        open_source(f"v4l2://{not_a_camera}").open()


class FakeV4l2Capture:
    """A camera that can only do 640x480 YUYV at 30 fps, whatever it is asked."""

    def __init__(self) -> None:
        self.asked: dict[int, float] = {}

    def set(self, prop: int, value: float) -> bool:
        self.asked[prop] = value
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480,
                cv2.CAP_PROP_FPS: 30.0,
                cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*"YUYV")}.get(prop, 0.0)


@needs_opencv
def test_v4l2_asks_for_its_settings_and_reports_what_it_got(caplog):
    source = open_source("v4l2:///dev/video0?width=1280&height=720&fps=60&fourcc=MJPG")
    capture = FakeV4l2Capture()
    with caplog.at_level(logging.WARNING):
        source._configure(cv2, capture)
    assert capture.asked[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert capture.asked[cv2.CAP_PROP_FRAME_WIDTH] == 1280
    assert capture.asked[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert capture.asked[cv2.CAP_PROP_FPS] == 60
    assert capture.asked[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert source.description == "v4l2 camera /dev/video0 640x480 @ 30 fps YUYV"
    assert "the camera gives 640x480 @ 30 fps YUYV" in caplog.text


def test_v4l2_buffer_timestamps_are_used_only_when_on_the_monotonic_clock():
    now_ns = 5_000 * 10**9
    assert v4l2_sensor_ns(now_ns / 1e6 - 20.5, now_ns) == now_ns - 20_500_000
    assert v4l2_sensor_ns(0.0, now_ns) is None  # before the first frame
    assert v4l2_sensor_ns(1_700_000_000_000.0, now_ns) is None  # wall clock: not ours
    assert v4l2_sensor_ns(now_ns / 1e6 + 5, now_ns) is None  # in the future


def closed_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_opencv
def test_rtsp_refused_is_a_source_error_and_uses_tcp(monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    source = open_source(f"rtsp://user:secret@127.0.0.1:{closed_tcp_port()}/stream")
    with pytest.raises(SourceError, match="cannot connect") as err:
        source.open()
    assert "secret" not in str(err.value)
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;tcp"
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")
    with pytest.raises(SourceError):
        source.open()
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;udp"  # yours wins


class FileCapture(OpenCvSource):
    """The shared OpenCV read path, run on a real capture of a file."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"test-capture://{path}")
        self.path = path

    @property
    def description(self) -> str:
        return f"capture of {self.path.name}"

    def _open_capture(self, cv2_module):
        return cv2_module.VideoCapture(str(self.path), cv2_module.CAP_FFMPEG)


@needs_opencv
def test_opencv_read_gives_rgb_and_a_failed_read_is_an_error_or_a_stall(mp4_path, photo_frames):
    source = FileCapture(mp4_path)
    source.open()
    frames = [source.read(timeout_s=5.0) for _ in range(MP4_FRAMES)]
    assert np.abs(frames[0].image.astype(int) - photo_frames[0]).mean() < 10
    with pytest.raises(SourceError, match="reading a frame failed") as err:
        source.read(timeout_s=5.0)  # fails at once: an error, not a stall
    assert not isinstance(err.value, SourceStalled)
    with pytest.raises(SourceStalled, match="no frame"):
        source.read(timeout_s=0.0)  # fails after the whole timeout: a stall
    source.close()
    source.close()


@needs_opencv
def test_to_rgb_handles_the_layouts_opencv_returns():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    assert to_rgb(cv2, bgr)[0, 0].tolist() == [0, 0, 200]
    bgra = np.dstack([bgr, np.full((2, 3), 255, np.uint8)])
    assert to_rgb(cv2, bgra).shape == (2, 3, 3) and to_rgb(cv2, bgra)[0, 0].tolist() == [0, 0, 200]
    gray = np.full((2, 3), 7, np.uint8)
    assert to_rgb(cv2, gray)[1, 2].tolist() == [7, 7, 7]


def test_redact_hides_only_the_password():
    assert redact("rtsp://admin:pw@cam:554/s?x=1") == "rtsp://admin:***@cam:554/s?x=1"
    assert redact("rtsp://cam/s") == "rtsp://cam/s"


# --- GStreamer: gst:// and csi:// ------------------------------------------------------------


def test_gst_pipelines_end_in_an_appsink_that_keeps_only_the_newest_frame():
    assert with_appsink("videotestsrc ! videoconvert") == f"videotestsrc ! videoconvert ! {APPSINK}"
    own = "v4l2src ! videoconvert ! video/x-raw,format=BGR ! appsink name=s emit-signals=false"
    assert with_appsink(own) == own
    assert "drop=true" in APPSINK and "max-buffers=1" in APPSINK and "sync=false" in APPSINK
    source = open_source("gst://videotestsrc%20pattern=ball%20!%20videoconvert")
    assert source.pipeline == f"videotestsrc pattern=ball ! videoconvert ! {APPSINK}"


def test_csi_pipeline_goes_through_nvmm_and_nvvidconv_to_bgr():
    text = csi_pipeline(1, 1920, 1080, 60, 2)
    elements = [part.strip() for part in text.split("!")]
    assert elements[0] == "nvarguscamerasrc sensor-id=1"
    assert elements[1] == ("video/x-raw(memory:NVMM), width=1920, height=1080, format=NV12, "
                           "framerate=60/1")
    assert elements[2] == "nvvidconv flip-method=2"
    assert elements[3] == "video/x-raw, format=BGRx"
    assert elements[4] == "videoconvert"
    assert elements[5] == "video/x-raw, format=BGR"
    assert elements[6].startswith("appsink")
    assert open_source("csi://1?width=1920&height=1080&fps=60&flip=2").pipeline == text


def test_has_gstreamer_reads_opencvs_build_information():
    built = types.SimpleNamespace(getBuildInformation=lambda: (
        "  Video I/O:\n    FFMPEG:    YES\n    GStreamer:                   YES (1.20.3)\n"))
    without = types.SimpleNamespace(getBuildInformation=lambda: (
        "  Video I/O:\n    FFMPEG:    YES\n    GStreamer:                   NO\n"))
    assert has_gstreamer(built) and not has_gstreamer(without)


@needs_opencv
@pytest.mark.parametrize("uri", ["gst://videotestsrc ! videoconvert", "csi://0"])
def test_gstreamer_sources_need_an_opencv_built_with_gstreamer(uri):
    if has_gstreamer(cv2):
        pytest.skip("this OpenCV has GStreamer: the missing-GStreamer message cannot show")
    source = open_source(uri)
    with pytest.raises(ConfigError, match="no GStreamer support") as err:
        source.open()
    assert "--system-site-packages" in str(err.value) and "\n" not in str(err.value)
    source.close()


def test_opencv_missing_is_a_config_error_for_live_sources(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    for uri in ("v4l2:///dev/video0", "rtsp://cam/s", "gst://videotestsrc", "csi://0"):
        with pytest.raises(ConfigError, match=r"needs OpenCV: pip install 'stylecast\[video\]'"):
            open_source(uri).open()


# --- picamera2:// (a fake Picamera2: the real library is not installable here) -------------


class FakeRequest:
    def __init__(self, camera: FakePicamera2, image: np.ndarray, sensor_ns: int) -> None:
        self.camera, self.image, self.sensor_ns = camera, image, sensor_ns
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main" and not self.released
        if self.camera.fail_make_array:
            raise RuntimeError("mapping failed")
        return self.image.copy()  # the real make_array copies (and drops stride padding)

    def get_metadata(self) -> dict:
        return {"SensorTimestamp": self.sensor_ns, "ExposureTime": 10000}

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    """Only what our adapter calls, behaving as picamera2 documents it."""

    instances: ClassVar[list[FakePicamera2]] = []
    fail_init = False

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.fail_init:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.config: dict | None = None
        self.started = self.closed = False
        self.requests: list[FakeRequest] = []
        self.waits: list[float] = []
        self.time_out = self.fail_make_array = False
        self.cancelled = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, lores=None, buffer_count=6, controls=None,
                                   queue=True, **kwargs) -> dict:
        main = {"format": "XBGR8888", "size": (1280, 720)} | (main or {})
        return {"main": main, "buffer_count": buffer_count, "queue": queue,
                "controls": controls or {}}

    def configure(self, config: dict) -> None:
        self.config = config

    def camera_configuration(self) -> dict:
        return self.config

    def start(self) -> None:
        self.started = True

    def capture_request(self, wait=None, flush=None) -> FakeRequest:
        assert wait and wait is not True  # a real timeout, never "return a job"
        self.waits.append(wait)
        if self.time_out:
            raise concurrent.futures.TimeoutError()
        width, height = self.config["main"]["size"]
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = 255  # the stream is RGB in memory for format BGR888
        request = FakeRequest(self, image, time.monotonic_ns() - 5_000_000)
        self.requests.append(request)
        return request

    @contextlib.contextmanager
    def captured_request(self, wait=None, flush=None):
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()

    def cancel_all_and_flush(self) -> None:
        self.cancelled += 1

    def close(self) -> None:
        self.started, self.closed = False, True


@pytest.fixture
def fake_picamera2(monkeypatch) -> type[FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.instances = []
    FakePicamera2.fail_init = False
    return FakePicamera2


def test_picamera2_missing_is_a_config_error_saying_where_it_comes_from(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    source = open_source("picamera2://0")  # constructing needs no library
    with pytest.raises(ConfigError) as err:
        source.open()
    message = str(err.value)
    assert "python3-picamera2" in message and "--system-site-packages" in message
    source.close()


def test_picamera2_asks_for_rgb_few_buffers_no_queue_and_the_frame_rate(fake_picamera2):
    with open_source("picamera2://1?width=320&height=240&fps=25"):
        (camera,) = fake_picamera2.instances
        assert camera.camera_num == 1 and camera.started
        config = camera.config
        assert config["main"] == {"format": "BGR888", "size": (320, 240)}
        assert config["buffer_count"] >= 2
        assert config["queue"] is False
        assert config["controls"]["FrameDurationLimits"] == (40000, 40000)
    assert camera.closed and not camera.started


def test_picamera2_frames_are_copied_stamped_and_their_requests_released(fake_picamera2):
    with open_source("picamera2://?width=64&height=48") as source:
        frame = source.read(timeout_s=2.0)
        second = source.read(timeout_s=0.0)
    camera = fake_picamera2.instances[0]
    first_request = camera.requests[0]
    assert all(request.released for request in camera.requests)
    assert frame.image.shape == (48, 64, 3) and frame.image.flags.c_contiguous
    assert frame.image[0, 0].tolist() == [255, 0, 0]  # RGB as it lies in memory: no channel swap
    assert not np.shares_memory(frame.image, first_request.image)
    assert frame.t_capture_ns == first_request.sensor_ns
    assert abs((time.time_ns() - frame.t_capture_unix_ns) - 5_000_000) < 10**9
    assert camera.waits[0] == 2.0 and camera.waits[1] > 0  # read(0) still waits, briefly
    assert second.t_capture_ns == camera.requests[1].sensor_ns


def test_picamera2_timeout_is_a_stall_and_a_failure_an_error(fake_picamera2):
    source = open_source("picamera2://0")
    source.open()
    camera = fake_picamera2.instances[0]
    camera.time_out = True
    with pytest.raises(SourceStalled, match=r"no frame for 0\.5 s"):
        source.read(timeout_s=0.5)
    assert camera.cancelled == 1  # the timed-out job cannot take a later request
    camera.time_out, camera.fail_make_array = False, True
    with pytest.raises(SourceError, match="mapping failed") as err:
        source.read(timeout_s=0.5)
    assert not isinstance(err.value, SourceStalled)
    assert camera.requests[-1].released  # released even when copying it out failed
    source.close()
    source.close()
    assert camera.closed


def test_picamera2_camera_in_use_is_a_source_error(fake_picamera2):
    fake_picamera2.fail_init = True
    source = open_source("picamera2://0")
    with pytest.raises(SourceError, match="__init__ sequence did not complete") as err:
        source.open()
    assert "another process" in str(err.value)
    source.close()


def test_a_camera_source_without_opencv_says_which_extra_brings_it(monkeypatch):
    from stylecast.daemon.sources.opencv_capture import import_cv2

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ConfigError) as err:
        import_cv2("rtsp://admin:secret@cam/stream")
    message = str(err.value)
    assert message.startswith("source 'rtsp://admin:***@cam/stream': this source needs OpenCV: "
                              "pip install 'stylecast[video]'")
    assert "--system-site-packages" in message and "secret" not in message
