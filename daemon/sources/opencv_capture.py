"""Live captures through OpenCV: `v4l2://`, `rtsp://`/`rtsps://`, `gst://` and `csi://`.

One `cv2.VideoCapture` per source, opened on a target with a backend; the schemes differ only in
how they open it. GStreamer pipelines (gst://, and csi:// which builds one for a Jetson CSI
camera) need an OpenCV built with GStreamer, which pip wheels are not: on a Jetson use JetPack's
OpenCV from a venv created with --system-site-packages.

RTSP goes over TCP unless OPENCV_FFMPEG_CAPTURE_OPTIONS says otherwise: that variable is
process-global and read by OpenCV at each open, so it is set (only where unset) when an RTSP
source opens; a daemon has one source, and to use UDP set it yourself, e.g. in the unit's
Environment= ("rtsp_transport;udp").
"""

from __future__ import annotations

import logging
import os
import re
import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stylecast.core.errors import ConfigError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.daemon.sources.base import (
    Captured,
    FrameSource,
    SourceError,
    SourceStalled,
    redact,
)

log = logging.getLogger(__name__)

RTSP_OPEN_TIMEOUT_MS = 10_000
RTSP_READ_TIMEOUT_MS = 5_000
RTSP_CAPTURE_OPTIONS = "rtsp_transport;tcp"
# What gst:// adds when a pipeline does not end in its own appsink: keep only the newest
# frame and never wait for the clock, so a slow reader sees fresh frames, not a queue.
APPSINK = "appsink drop=true max-buffers=1 sync=false"
# A V4L2 buffer timestamp further than this from now is not on CLOCK_MONOTONIC.
MAX_SENSOR_AGE_NS = 2_000_000_000


def import_cv2(uri: str) -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError(f"source '{redact(uri)}': {needs('this source', 'opencv')} (on a "
                          "Jetson: JetPack's OpenCV, in a venv made with "
                          "--system-site-packages)") from None
    return cv2


def has_gstreamer(cv2: Any) -> bool:
    """Whether this OpenCV was built with its GStreamer video I/O backend."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NO"


def to_rgb(cv2: Any, frame: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or gray, or BGRA) frame -> a new (H, W, 3) RGB array."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def with_appsink(pipeline: str) -> str:
    """The pipeline, ending in an appsink OpenCV can read from."""
    last_element = pipeline.rsplit("!", 1)[-1].split()
    if last_element and last_element[0] == "appsink":
        return pipeline
    return f"{pipeline.rstrip()} ! {APPSINK}"


def csi_pipeline(sensor_id: int, width: int, height: int, fps: int, flip: int) -> str:
    """A Jetson CSI camera (Argus) as BGR frames in system memory, for OpenCV."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"format=NV12, framerate={fps}/1 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, format=BGRx ! "
            f"videoconvert ! video/x-raw, format=BGR ! {APPSINK}")


def v4l2_sensor_ns(pos_msec: float, now_ns: int) -> int | None:
    """A V4L2 buffer timestamp (OpenCV's CAP_PROP_POS_MSEC) if it is on CLOCK_MONOTONIC."""
    if pos_msec <= 0:
        return None
    sensor_ns = round(pos_msec * 1e6)
    return sensor_ns if 0 <= now_ns - sensor_ns <= MAX_SENSOR_AGE_NS else None


class OpenCvSource(FrameSource):
    """A cv2.VideoCapture; subclasses say how to open it."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._cv2: Any = None
        self._capture: Any = None

    @abstractmethod
    def _open_capture(self, cv2: Any) -> Any:
        """An opened cv2.VideoCapture, or SourceError/ConfigError."""

    def open(self) -> None:
        self.close()
        cv2 = import_cv2(self.uri)
        self._capture = self._open_capture(cv2)
        self._cv2 = cv2
        log.info("opened %s", self.description)

    def read(self, timeout_s: float) -> Captured:
        if self._capture is None:
            raise RuntimeError("read() before open()")
        started = time.monotonic()
        ok, frame = self._capture.read()
        if not ok or frame is None:
            waited = time.monotonic() - started
            if waited >= timeout_s:
                raise SourceStalled(f"{self.description}: no frame for {waited:.1f} s")
            raise SourceError(f"{self.description}: reading a frame failed")
        return Captured.now(to_rgb(self._cv2, frame), self._sensor_ns())

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _sensor_ns(self) -> int | None:
        return None


class V4l2Options(BaseModel):
    """v4l2:///dev/video0?width=1280&height=720&fps=30&fourcc=MJPG (all optional)."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: float | None = Field(default=None, gt=0)
    fourcc: str | None = None

    @field_validator("fourcc")
    @classmethod
    def _four_characters(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9 ]{4}", value):
            raise ValueError("should be a four-character code such as MJPG or YUYV")
        return value


class V4l2Source(OpenCvSource):
    def __init__(self, uri: str, device: str, options: V4l2Options) -> None:
        super().__init__(uri)
        self.device = device
        self.options = options
        self._actual = ""

    @property
    def description(self) -> str:
        return f"v4l2 camera {self.device}" + (f" {self._actual}" if self._actual else "")

    def _open_capture(self, cv2: Any) -> Any:
        if not Path(self.device).exists():
            raise SourceError(f"source '{self.uri}': {self.device} does not exist "
                              "(camera unplugged?)")
        capture = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"source '{self.uri}': cannot open {self.device} "
                              "(busy, or not a capture device?)")
        self._configure(cv2, capture)
        return capture

    def _configure(self, cv2: Any, capture: Any) -> None:
        o = self.options
        # The pixel format first: many cameras offer their large sizes only as MJPG.
        if o.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*o.fourcc))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, o.width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, o.height), (cv2.CAP_PROP_FPS, o.fps)):
            if value is not None:
                capture.set(prop, value)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames queued in the driver
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = capture.get(cv2.CAP_PROP_FPS)
        code = int(capture.get(cv2.CAP_PROP_FOURCC))
        fourcc = "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24)).strip()
        self._actual = f"{size_text(height, width)} @ {fps:g} fps {fourcc}".strip()
        asked = ((o.width, width), (o.height, height), (o.fourcc, fourcc))
        if any(want is not None and want != got for want, got in asked) or (
                o.fps is not None and abs(o.fps - fps) > 0.5):
            log.warning("%s: asked for %sx%s @ %s fps %s, the camera gives %s", self.device,
                        o.width or "any", o.height or "any", o.fps or "any", o.fourcc or "",
                        self._actual)

    def _sensor_ns(self) -> int | None:
        return v4l2_sensor_ns(self._capture.get(self._cv2.CAP_PROP_POS_MSEC),
                              time.monotonic_ns())


class RtspSource(OpenCvSource):
    @property
    def description(self) -> str:
        return f"stream {redact(self.uri)}"

    def _open_capture(self, cv2: Any) -> Any:
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", RTSP_CAPTURE_OPTIONS)
        capture = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, RTSP_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, RTSP_READ_TIMEOUT_MS])
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"source '{redact(self.uri)}': cannot connect "
                              "(refused, unreachable or not a video stream)")
        return capture


class CsiOptions(BaseModel):
    """csi://N?width=1280&height=720&fps=30&flip=0 (flip: nvvidconv flip-method 0-7)."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=1280, gt=0)
    height: int = Field(default=720, gt=0)
    fps: int = Field(default=30, gt=0)
    flip: int = Field(default=0, ge=0, le=7)


class GstreamerSource(OpenCvSource):
    """gst://PIPELINE, and csi://N through the pipeline csi_pipeline() builds."""

    def __init__(self, uri: str, pipeline: str, description: str) -> None:
        super().__init__(uri)
        self.pipeline = pipeline
        self._description = description

    @classmethod
    def for_csi(cls, uri: str, sensor_id: int, options: CsiOptions) -> GstreamerSource:
        o = options
        pipeline = csi_pipeline(sensor_id, o.width, o.height, o.fps, o.flip)
        return cls(uri, pipeline,
                   f"CSI camera {sensor_id} {size_text(o.height, o.width)} @ {o.fps} fps")

    @property
    def description(self) -> str:
        return self._description

    def _open_capture(self, cv2: Any) -> Any:
        if not has_gstreamer(cv2):
            raise ConfigError(f"source '{self.uri}': this OpenCV ({cv2.__version__}) has no "
                              "GStreamer support; on a Jetson use JetPack's OpenCV from a venv "
                              "created with --system-site-packages")
        capture = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"source '{self.uri}': GStreamer cannot start the pipeline "
                              f"'{self.pipeline}' (camera missing or busy, or a pipeline error: "
                              "try it with gst-launch-1.0)")
        return capture
