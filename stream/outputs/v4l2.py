"""--v4l2 /dev/videoN: the stream as a virtual webcam, for video-call apps and anything else
that reads a camera, through a v4l2loopback device and pyvirtualcam (Linux).

The device comes from the v4l2loopback kernel module, e.g.

    sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="stylecast" exclusive_caps=1

(exclusive_caps=1 makes the device show as a capture-only camera, which Chrome, Zoom and Meet
need to list it). The camera is opened on the first frame, at its size, and opened again at a
new size if the stream's changes. Frames go in as RGB; pyvirtualcam's v4l2loopback backend
converts them to I420 (YU12), the format the device offers to readers. Writing a frame to the
device is a copy into the kernel, so it is done in the subscription's loop.

Not yet run against a real v4l2loopback device (the module cannot be loaded where the tests
run): the tests put a stand-in behind pyvirtualcam's own Camera, in place of its v4l2loopback
backend (the part that talks to the kernel), and see the real backend's errors.
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from typing import Any

from stylecast.core.errors import ConfigError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.outputs.base import OutputContext, OutputPlugin, say

FPS_HINT = 30.0  # pyvirtualcam wants a rate; the v4l2loopback backend does not use it
MODPROBE = ('sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="stylecast" '
            "exclusive_caps=1")


def load_pyvirtualcam() -> Any:
    try:
        import pyvirtualcam
    except ImportError:
        raise ConfigError(needs("--v4l2", "pyvirtualcam")) from None
    return pyvirtualcam


def check_device(device: str) -> str:
    """`device` when it is a character device, else a ConfigError saying how to make one."""
    try:
        mode = Path(device).stat().st_mode
    except OSError as err:
        raise ConfigError(f"--v4l2 {device}: {err.strerror.lower()}; load v4l2loopback first "
                          f"({MODPROBE} makes /dev/video10)") from None
    if not stat.S_ISCHR(mode):
        raise ConfigError(f"--v4l2 {device}: not a video device (expected /dev/videoN)")
    return device


class VirtualWebcam:
    """The --v4l2 output: each frame sent to the device, the camera (re)opened at its size."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._pyvirtualcam = load_pyvirtualcam()
        self._camera: Any = None
        self._size: tuple[int, int] | None = None  # (width, height)
        self.frames = 0

    def start(self, subscriber: Subscriber) -> None:
        say(f"feeding the virtual webcam {self.device}")

    def write(self, frame: Frame) -> bool:
        image = frame.image
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._open(size)
        self._camera.send(image)
        self.frames += 1
        return True

    def poll(self) -> bool:
        return True

    def close(self, completed: bool) -> str | None:
        if self._camera is None:
            return None
        self._camera.close()
        self._camera = None
        return f"sent {self.frames} frames to the virtual webcam {self.device}"

    def _open(self, size: tuple[int, int]) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        rgb = self._pyvirtualcam.PixelFormat.RGB
        try:
            self._camera = self._pyvirtualcam.Camera(*size, FPS_HINT, fmt=rgb, device=self.device,
                                                     backend="v4l2loopback")
        except RuntimeError as err:  # pyvirtualcam's one error type for a device it cannot use
            reason = str(err).removeprefix("'v4l2loopback' backend: ")
            raise ConfigError(f"--v4l2 {self.device}: cannot open it as a "
                              f"{size_text(size[1], size[0])} virtual webcam: {reason}") from None
        self._size = size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--v4l2", metavar="DEVICE",
                        help="feed a v4l2loopback virtual webcam, e.g. /dev/video10 (Linux; "
                        "load the module first: docs/consumers.md)")


def open_output(args: argparse.Namespace, context: OutputContext) -> VirtualWebcam | None:
    if args.v4l2 is None:
        return None
    load_pyvirtualcam()  # a missing library is named before the device
    return VirtualWebcam(check_device(args.v4l2))


PLUGIN = OutputPlugin("v4l2", add_arguments, open_output)
