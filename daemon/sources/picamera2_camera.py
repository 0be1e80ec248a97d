"""`picamera2://N`: a Raspberry Pi camera through picamera2 (libcamera).

picamera2 and libcamera's bindings come from apt, so a venv must see the system's packages.
Format names are DRM little-endian: "BGR888" is R, G, B in memory, i.e. RGB numpy arrays.
Each frame is copied out of its request (make_array, which also drops the rows' stride
padding) before the request goes back to the camera, so the camera never overwrites a frame
the pipeline holds. SensorTimestamp is on CLOCK_MONOTONIC, like time.monotonic_ns().
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stylecast.core.errors import ConfigError
from stylecast.core.sizes import size_text
from stylecast.daemon.sources.base import Captured, FrameSource, SourceError, SourceStalled

log = logging.getLogger(__name__)

MAIN_FORMAT = "BGR888"  # RGB byte order in numpy
# Two buffers at least, or every other frame is dropped; four leave room for a slow reader.
BUFFER_COUNT = 4


class Picamera2Options(BaseModel):
    """picamera2://N?width=640&height=480&fps=30."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=640, gt=0)
    height: int = Field(default=480, gt=0)
    fps: float = Field(default=30.0, gt=0)


def import_picamera2() -> Any:
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise ConfigError("picamera2:// needs picamera2, which comes from apt "
                          "(python3-picamera2); create the venv with --system-site-packages"
                          ) from None
    return Picamera2


def video_configuration(camera: Any, options: Picamera2Options) -> dict[str, Any]:
    """What we ask picamera2 for: RGB main stream, few buffers, no stale queued frame."""
    frame_us = round(1_000_000 / options.fps)
    return camera.create_video_configuration(
        main={"format": MAIN_FORMAT, "size": (options.width, options.height)},
        buffer_count=BUFFER_COUNT,
        queue=False,  # wait for the next frame rather than hand out one already waiting
        controls={"FrameDurationLimits": (frame_us, frame_us)},
    )


class Picamera2Source(FrameSource):
    def __init__(self, uri: str, camera_number: int, options: Picamera2Options) -> None:
        super().__init__(uri)
        self.camera_number = camera_number
        self.options = options
        self._camera: Any = None
        self._size = (options.width, options.height)

    @property
    def description(self) -> str:
        width, height = self._size
        return (f"Pi camera {self.camera_number} {size_text(height, width)} @ "
                f"{self.options.fps:g} fps")

    def open(self) -> None:
        self.close()
        picamera2_class = import_picamera2()
        try:
            self._camera = picamera2_class(self.camera_number)
            self._camera.configure(video_configuration(self._camera, self.options))
            self._camera.start()
            self._size = tuple(self._camera.camera_configuration()["main"]["size"])
        except Exception as err:  # libcamera raises RuntimeError, IndexError, OSError...
            self.close()
            raise SourceError(f"source '{self.uri}': cannot start camera {self.camera_number} "
                              f"({type(err).__name__}: {err}); is it connected, and not "
                              "held by another process?") from err
        if self._size != (self.options.width, self.options.height):
            width, height = self._size
            asked = size_text(self.options.height, self.options.width)
            log.warning("picamera2 camera %d gives %s (asked for %s)", self.camera_number,
                        size_text(height, width), asked)
        log.info("opened %s", self.description)

    def read(self, timeout_s: float) -> Captured:
        if self._camera is None:
            raise RuntimeError("read() before open()")
        # wait=0 would mean "do not wait, return a job"; always give a real timeout.
        wait = max(timeout_s, 0.001)
        try:
            with self._camera.captured_request(wait=wait) as request:
                image = request.make_array("main")
                metadata = request.get_metadata()
        except (TimeoutError, concurrent.futures.TimeoutError):
            self._camera.cancel_all_and_flush()  # the timed-out job must not take a request
            raise SourceStalled(f"{self.description}: no frame for {timeout_s:g} s") from None
        except Exception as err:
            raise SourceError(f"{self.description}: capture failed "
                              f"({type(err).__name__}: {err})") from err
        return Captured.now(image, metadata.get("SensorTimestamp"))

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            camera.close()  # stops it first
        except Exception as err:
            log.warning("closing picamera2 camera %d: %s", self.camera_number, err)
