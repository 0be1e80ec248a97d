"""stylecast-sub --show: the stream in a desktop window through OpenCV's HighGUI."""

from __future__ import annotations

import argparse
import os
import re
import socket
from pathlib import Path
from typing import Any

from stylecast.core.errors import ConfigError
from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.outputs.base import OutputContext, OutputPlugin

DISPLAY_PROBE_S = 1.0


class Window:
    """An OpenCV window; q or Esc (or closing it) ends the subscription."""

    QUIT_KEYS = (ord("q"), 27)

    def __init__(self, title: str) -> None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError("--show needs a display and neither DISPLAY nor WAYLAND_DISPLAY is "
                              "set; use --http HOST:PORT to watch in a browser")
        # OpenCV's Qt backend aborts the whole process on a display it cannot open.
        unreachable = unreachable_display()
        if unreachable:
            raise ConfigError(f"--show cannot open the display {unreachable}; use --http "
                              "HOST:PORT to watch in a browser")
        try:
            import cv2
        except ImportError:
            raise ConfigError("--show needs OpenCV (pip install opencv-python)") from None
        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise ConfigError("--show needs OpenCV with GUI support, this one has none "
                              "(pip install opencv-python, or use --http HOST:PORT)") from None

    def show(self, image: Any) -> bool:
        self.cv2.imshow(self.title, image[..., ::-1])
        return self.poll()

    def poll(self) -> bool:
        key = self.cv2.waitKey(1) & 0xFF
        visible = self.cv2.getWindowProperty(self.title, self.cv2.WND_PROP_VISIBLE) >= 1
        return key not in self.QUIT_KEYS and visible

    def close(self) -> None:
        self.cv2.destroyWindow(self.title)


class WindowOutput:
    """--show as an output: the window ends the run when it is closed."""

    def __init__(self, window: Window) -> None:
        self.window = window

    def start(self, subscriber: Subscriber) -> None:
        pass

    def write(self, frame: Frame) -> bool:
        return self.window.show(frame.image)

    def poll(self) -> bool:
        return self.window.poll()

    def close(self, completed: bool) -> str | None:
        self.window.close()
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--show", action="store_true", help="open a window (needs a display)")


def open_output(args: argparse.Namespace, context: OutputContext) -> WindowOutput | None:
    if not args.show:
        return None
    return WindowOutput(Window(f"{context.program} {context.endpoint}"))


PLUGIN = OutputPlugin("window", add_arguments, open_output)


def unreachable_display() -> str | None:
    """'DISPLAY=...' when no display server answers there (Wayland or X11), else None."""
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        if Path(runtime, wayland).exists():
            return None
    display = os.environ.get("DISPLAY", "")
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(\.\d+)?", display)
    if match is None:
        return f"DISPLAY={display}" if display else f"WAYLAND_DISPLAY={wayland}"
    host, number = match["host"], int(match["number"])
    try:
        if host not in ("", "unix"):
            socket.create_connection((host, 6000 + number), DISPLAY_PROBE_S).close()
            return None
    except OSError:
        return f"DISPLAY={display}"
    path = f"/tmp/.X11-unix/X{number}"
    for address in (path, "\0" + path):  # the socket file, or Linux's abstract namespace
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(DISPLAY_PROBE_S)
            try:
                probe.connect(address)
                return None
            except OSError:
                pass
    return f"DISPLAY={display}"
