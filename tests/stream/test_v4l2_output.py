"""stylecast-sub --v4l2: the virtual webcam, fed from a real stylecastd through pyvirtualcam.

The v4l2loopback kernel module cannot be loaded here, so this has NOT run against a real
device: pyvirtualcam's own Camera is used, with a stand-in registered in place of its
v4l2loopback backend (the one part that talks to the kernel) that records what it is sent.
The real backend is used where it fails: a device that does not exist, and one that is not a
v4l2loopback device (/dev/null).
"""

from __future__ import annotations

import json
import sys
from typing import ClassVar

import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc

from stylecast.core.errors import ConfigError
from stylecast.stream.client import Frame
from stylecast.stream.outputs.v4l2 import VirtualWebcam
from stylecast.stream.sub import main

from support.tiny_models import expected_stylized

SOURCE = "test://?width=64&height=48&fps=30"
MISSING = "/dev/video-stylecast-missing"


class LoopbackStandIn:
    """pyvirtualcam's Backend interface, as its v4l2loopback backend has it: records the
    format it was opened with and every frame (the 1-D buffer pyvirtualcam hands on)."""

    opened: ClassVar[list[LoopbackStandIn]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                 device: str | None, **kw) -> None:
        self.format = (width, height, fourcc, device)
        self.frames: list[np.ndarray] = []
        self.closed = False
        self.opened.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self.format[3]

    def native_fourcc(self) -> int:
        return encode_fourcc("I420")


@pytest.fixture
def loopback(monkeypatch) -> list[LoopbackStandIn]:
    LoopbackStandIn.opened = []
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "v4l2loopback", LoopbackStandIn)
    return LoopbackStandIn.opened


@pytest.fixture
def daemon(inverting_daemon):
    return inverting_daemon(SOURCE)


def test_frames_from_the_daemon_reach_the_webcam(daemon, loopback, capsys):
    # /dev/null: a character device, as a v4l2loopback device is; the stand-in takes it.
    assert main([daemon.publish, "--v4l2", "/dev/null", "--count", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    published = [json.loads(line) for line in out.splitlines()][:-1]
    assert err.splitlines() == ["feeding the virtual webcam /dev/null",
                                "sent 5 frames to the virtual webcam /dev/null"]
    [camera] = loopback
    assert camera.format == (64, 48, encode_fourcc("raw "), "/dev/null")  # RGB in
    assert camera.closed and len(camera.frames) == len(published) == 5
    for sent, line in zip(camera.frames, published, strict=True):
        np.testing.assert_array_equal(sent.reshape(48, 64, 3), expected_stylized(line["frame"]))


def frame(height: int, width: int, value: int) -> Frame:
    image = np.full((height, width, 3), value, np.uint8)
    return Frame("stylized", {"t_capture_ns": 0}, image.tobytes(), image, 0)


def test_a_new_frame_size_opens_the_camera_again_at_that_size(loopback):
    webcam = VirtualWebcam("/dev/video10")
    for value, size in enumerate([(48, 64), (48, 64), (24, 32)]):
        assert webcam.write(frame(*size, value))
    assert webcam.close(completed=True) == "sent 3 frames to the virtual webcam /dev/video10"
    first, second = loopback
    assert first.format[:2] == (64, 48) and first.closed and len(first.frames) == 2
    assert second.format[:2] == (32, 24) and second.closed
    assert [f[0] for f in first.frames + second.frames] == [0, 1, 2]


def test_a_missing_device_is_one_line_before_subscribing(folder, capsys):
    assert main([f"ipc://{folder}/nobody", "--v4l2", MISSING]) == 78
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"stylecast-sub: error: --v4l2 {MISSING}: no such file or directory; "
                          "load v4l2loopback first (sudo modprobe v4l2loopback ")


def test_pyvirtualcams_own_error_for_a_missing_device_is_one_line():
    with pytest.raises(ConfigError) as error:
        VirtualWebcam(MISSING).write(frame(48, 64, 0))
    assert str(error.value) == (f"--v4l2 {MISSING}: cannot open it as a 64x48 virtual webcam: "
                                f"Device {MISSING} does not exist.")


def test_a_device_that_is_no_v4l2loopback_ends_the_run_with_one_line(daemon, capsys):
    assert main([daemon.publish, "--v4l2", "/dev/null", "--count", "3"]) == 78
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == ("stylecast-sub: error: --v4l2 /dev/null: cannot open it as "
                                    "a 64x48 virtual webcam: Device capabilities of /dev/null "
                                    "could not be queried.")
    assert out.splitlines()[-1].startswith("summary: 1 frames")


def test_without_pyvirtualcam_the_extra_is_named(folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import now raises ImportError
    assert main([f"ipc://{folder}/nobody", "--v4l2", "/dev/video10"]) == 78
    assert capsys.readouterr().err == ("stylecast-sub: error: --v4l2 needs pyvirtualcam: pip "
                                       "install 'stylecast[v4l2]'\n")
