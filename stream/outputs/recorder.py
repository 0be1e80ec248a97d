"""Recorders for stylecast-sub --record: a video file (OpenCV) or a folder of numbered PNGs.

A video grows while it is recorded, so it is written under a `.partial` name and renamed to the
asked-for name only on a clean end: a crashed recording is never mistaken for a finished one.
OpenCV picks the container from the file extension, so the partial name keeps it
(`clip.mp4` is recorded as `clip.partial.mp4`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stylecast.core.errors import ConfigError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv")
FOURCC = "mp4v"
RATE_PROBE_NS = 1_000_000_000  # frames are buffered for up to a second to measure the rate
FALLBACK_FPS = 30.0  # when a recording ends before two frames with distinct times arrive
PNG_DIGITS = 6


class Recorder(Protocol):
    def write(self, image: np.ndarray, t_capture_ns: int) -> None: ...
    def close(self, completed: bool = True) -> None: ...


def open_recorder(path: Path) -> Recorder:
    """A video file for .mp4/.avi/.mkv, otherwise a folder of PNGs. Fails before any frame."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoRecorder(path)
    return PngFolderRecorder(path)


def partial_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class VideoRecorder:
    """An mp4v video whose size is the first frame's and whose rate is measured from the
    frames' capture times over the first second (they are held back until then)."""

    def __init__(self, path: Path) -> None:
        self.cv2 = _cv2("recording video")
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give a video file name")
        _make_folder(path.parent)
        self.path = path
        self.partial = partial_path(path)
        self.frames = 0
        self._pending: list[tuple[np.ndarray, int]] = []
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # (width, height)

    def write(self, image: np.ndarray, t_capture_ns: int) -> None:
        bgr = np.ascontiguousarray(image[..., ::-1])
        if self._writer is None:
            self._pending.append((bgr, t_capture_ns))
            if t_capture_ns - self._pending[0][1] >= RATE_PROBE_NS:
                self._open()
        else:
            self._put(bgr)

    def close(self, completed: bool = True) -> None:
        """Finish the file; `completed` renames it into place, otherwise it stays partial."""
        if self._writer is None and self._pending:
            self._open()
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if completed:
            os.replace(self.partial, self.path)
            log.info("recorded %d frames to %s", self.frames, self.path)
        else:
            log.warning("recording stopped early: %d frames left in %s", self.frames,
                        self.partial)

    def _open(self) -> None:
        first = self._pending[0][0]
        self._size = (first.shape[1], first.shape[0])
        fps = measured_fps([t for _, t in self._pending])
        fourcc = self.cv2.VideoWriter_fourcc(*FOURCC)
        self._writer = self.cv2.VideoWriter(str(self.partial), fourcc, fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            raise ConfigError(f"{self.path}: OpenCV cannot write {FOURCC} video to this file "
                              "(try .mp4 or .avi)")
        log.info("recording %dx%d at %.2f fps to %s", *self._size, fps, self.partial)
        pending, self._pending = self._pending, []
        for bgr, _ in pending:
            self._put(bgr)

    def _put(self, bgr: np.ndarray) -> None:
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = self.cv2.resize(bgr, self._size, interpolation=self.cv2.INTER_AREA)
        self._writer.write(bgr)
        self.frames += 1


def measured_fps(times_ns: list[int]) -> float:
    """Frames per second over capture times, FALLBACK_FPS when they span no time."""
    span_ns = times_ns[-1] - times_ns[0] if times_ns else 0
    if len(times_ns) < 2 or span_ns <= 0:
        return FALLBACK_FPS
    return (len(times_ns) - 1) * 1e9 / span_ns


class PngFolderRecorder:
    """Numbered PNGs (000000.png, 000001.png, ...) in a folder, each written atomically."""

    def __init__(self, folder: Path) -> None:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{folder}: is a file; --record takes a .mp4/.avi/.mkv file or a "
                              "folder for PNGs")
        if folder.is_dir() and any(folder.glob("*.png")):
            raise ConfigError(f"{folder}: already holds PNG files; record into an empty folder")
        _make_folder(folder)
        self.folder = folder
        self.frames = 0
        self._encode = _png_encoder()

    def write(self, image: np.ndarray, t_capture_ns: int) -> None:
        target = self.folder / f"{self.frames:0{PNG_DIGITS}d}.png"
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(self._encode(image))
        os.replace(partial, target)
        self.frames += 1

    def close(self, completed: bool = True) -> None:
        log.info("wrote %d PNGs to %s", self.frames, self.folder)


def _png_encoder() -> Any:
    """RGB image -> PNG bytes with OpenCV, or Pillow when OpenCV is not there."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        def encode(image: np.ndarray) -> bytes:
            ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
            if not ok:
                raise ValueError("OpenCV could not encode a PNG")
            return data.tobytes()
        return encode
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("recording PNGs needs OpenCV or Pillow (pip install "
                          "'stylecast[video]')") from None

    def encode_with_pillow(image: np.ndarray) -> bytes:
        import io

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
        return buffer.getvalue()
    return encode_with_pillow


def _cv2(purpose: str) -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError(f"{purpose} needs OpenCV (pip install 'stylecast[video]')") from None
    return cv2


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{folder}: cannot write there (permission denied)")
