"""Recorders for stylecast-sub --record: a video file (OpenCV) or a folder of numbered PNGs.

A recording that fails before its first frame leaves nothing behind: the library it needs is
found before anything is made, and a folder it made (parents included) is removed again when no
frame was written.

A video grows while it is recorded, so it is written under a `.partial` name and renamed to the
asked-for name only on a clean end (--count, --duration, --timeout, Ctrl-C, SIGTERM): a crashed
recording is never mistaken for a finished one. OpenCV picks the container from the file
extension, so the partial name keeps it (`clip.mp4` is recorded as `clip.partial.mp4`). A video
container cannot be whole before its end, so this is as atomic as it gets: an error ends the file
but it keeps its .partial name; a killed process (SIGKILL, power cut) leaves the .partial file as
it was, which for .mp4 means without its index, unplayable (.mkv and .avi play up to the cut).

Each PNG is written under a hidden temporary name and renamed, so the folder only ever holds
whole PNGs. A full disk is one DiskFullError line (exit 1): for PNGs from the failed write; for
video, whose OpenCV writer reports no write errors, from a free-space check once a second that
stops the recording while there is still room to finish the file (which is then kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from stylecast.core.atomic import disk_full_error, human_size, is_disk_full
from stylecast.core.errors import ConfigError, DiskFullError
from stylecast.core.extras import needs
from stylecast.core.sizes import size_text
from stylecast.stream.client import Frame, Subscriber
from stylecast.stream.outputs.base import OutputContext, OutputPlugin, say

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv")
FOURCC = "mp4v"
RATE_PROBE_NS = 1_000_000_000  # frames are buffered for up to a second to measure the rate
FALLBACK_FPS = 30.0  # when a recording ends before two frames with distinct times arrive
PNG_DIGITS = 6
# A video recording stops while this much is still free: room for the file's index and trailer.
MIN_FREE_BYTES = 16_000_000
FREE_SECONDS = 3  # ... or, for a big stream, this many seconds of it


class Recorder(Protocol):
    frames: int

    def describe(self) -> str: ...
    def write(self, image: np.ndarray, t_capture_ns: int) -> None: ...
    def close(self, completed: bool = True) -> str | None: ...


def open_recorder(path: Path) -> Recorder:
    """A video file for .mp4/.avi/.mkv, otherwise a folder of PNGs. Fails before any frame."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoRecorder(path)
    return PngFolderRecorder(path)


class RecorderOutput:
    """--record as an output: says where it records once subscribed, and what it wrote at the
    end."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._started = False

    def start(self, subscriber: Subscriber) -> None:
        self._started = True
        say(self.recorder.describe())

    def write(self, frame: Frame) -> bool:
        self.recorder.write(frame.image, int(frame.header["t_capture_ns"]))
        return True

    def poll(self) -> bool:
        return True

    def close(self, completed: bool) -> str | None:
        said = self.recorder.close(completed)
        if not self._started:  # it never said where it records: nothing to report
            return None
        return said or "recorded nothing: no frame arrived"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", type=Path, metavar="PATH",
                        help="a .mp4/.avi/.mkv video file, or a folder for numbered PNGs")


def open_output(args: argparse.Namespace, context: OutputContext) -> RecorderOutput | None:
    if args.record is None:
        return None
    return RecorderOutput(open_recorder(args.record))


PLUGIN = OutputPlugin("recorder", add_arguments, open_output)


def partial_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class VideoRecorder:
    """An mp4v video whose size is the first frame's and whose rate is measured from the
    frames' capture times over the first second (they are held back until then)."""

    def __init__(self, path: Path) -> None:
        self.cv2 = _cv2("recording video")
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give a video file name")
        self._made = _make_folder(path.parent)
        self.path = path
        self.partial = partial_path(path)
        self.frames = 0
        self.fps = 0.0
        self._pending: list[tuple[np.ndarray, int]] = []
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # (width, height)
        self._next_space_check = 0

    def describe(self) -> str:
        return f"recording to {self.path} (as {self.partial.name} until it ends)"

    def write(self, image: np.ndarray, t_capture_ns: int) -> None:
        bgr = np.ascontiguousarray(image[..., ::-1])
        if self._writer is None:
            self._pending.append((bgr, t_capture_ns))
            if t_capture_ns - self._pending[0][1] >= RATE_PROBE_NS:
                self._open()
        else:
            self._put(bgr)

    def close(self, completed: bool = True) -> str | None:
        """Finish the file; `completed` renames it into place, otherwise it stays partial.
        Returns the line that says what was written (None when nothing was)."""
        if self._writer is None and self._pending:
            try:
                self._open()
            except ConfigError:
                _remove_folders(self._made)
                raise
        if self._writer is None:  # nothing was recorded
            _remove_folders(self._made)
            return None
        self._writer.release()
        self._writer = None
        seconds = self.frames / self.fps if self.fps else 0.0
        if completed:
            os.replace(self.partial, self.path)
            return (f"recorded {self.frames} frames ({seconds:.1f} s at {self.fps:.2f} fps) to "
                    f"{self.path}")
        return (f"recording stopped early: {self.frames} frames ({seconds:.1f} s) left in "
                f"{self.partial}")

    def _open(self) -> None:
        first = self._pending[0][0]
        self._size = (first.shape[1], first.shape[0])
        fps = measured_fps([t for _, t in self._pending])
        fourcc = self.cv2.VideoWriter_fourcc(*FOURCC)
        self._writer = self.cv2.VideoWriter(str(self.partial), fourcc, fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            self._pending = []  # not to be tried again at close()
            self.partial.unlink(missing_ok=True)
            raise ConfigError(f"{self.path}: OpenCV cannot write {FOURCC} video to this file "
                              "(try .mp4 or .avi)")
        self.fps = fps
        self._next_space_check = round(fps)
        log.info("recording %s at %.2f fps to %s", size_text(*first.shape[:2]), fps, self.partial)
        pending, self._pending = self._pending, []
        for bgr, _ in pending:
            self._put(bgr)

    def _put(self, bgr: np.ndarray) -> None:
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = self.cv2.resize(bgr, self._size, interpolation=self.cv2.INTER_AREA)
        self._writer.write(bgr)
        self.frames += 1
        if self.frames >= self._next_space_check:
            self._next_space_check = self.frames + max(1, round(self.fps))
            self._check_space()

    def _check_space(self) -> None:
        """OpenCV's writer drops what does not fit without a word: stop while the rest of the
        file (its index) still fits, rather than end with a broken video."""
        try:
            free = shutil.disk_usage(self.partial.parent).free
            written = self.partial.stat().st_size
        except OSError:
            return
        per_second = written * self.fps / max(self.frames, 1)
        reserve = max(MIN_FREE_BYTES, FREE_SECONDS * per_second)
        if free < reserve:
            raise DiskFullError(f"{self.path}: disk nearly full: {human_size(free)} free in "
                                f"{self.partial.parent}, stopped recording after {self.frames} "
                                f"frames to keep room to finish the file; free some space")


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
        self._encode = _png_encoder()  # before the folder: a missing library leaves nothing
        self._made = _make_folder(folder)
        self.folder = folder
        self.frames = 0
        self._first_ns = self._last_ns = 0

    def describe(self) -> str:
        return f"recording to {self.folder}/ as numbered PNGs ({0:0{PNG_DIGITS}d}.png, ...)"

    def write(self, image: np.ndarray, t_capture_ns: int) -> None:
        target = self.folder / f"{self.frames:0{PNG_DIGITS}d}.png"
        partial = target.with_name(f".{target.name}.partial")
        data = self._encode(image)
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        except OSError as err:
            written = partial.stat().st_size if partial.exists() else 0
            partial.unlink(missing_ok=True)
            if is_disk_full(err):
                raise disk_full_error(target, needed=len(data), written=written) from None
            raise ConfigError(f"{target}: cannot write it ({err.strerror or err})") from None
        if not self.frames:
            self._first_ns = t_capture_ns
        self._last_ns = t_capture_ns
        self.frames += 1

    def close(self, completed: bool = True) -> str | None:
        if not self.frames:
            _remove_folders(self._made)
            return None
        span_s = (self._last_ns - self._first_ns) / 1e9
        return f"recorded {self.frames} PNGs ({span_s:.1f} s of capture time) to {self.folder}/"


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
        raise ConfigError(needs("recording PNGs", "opencv", "pillow")) from None

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
        raise ConfigError(needs(purpose, "opencv")) from None
    return cv2


def _make_folder(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; returns those it made, deepest first."""
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_folders(missing)
        raise ConfigError(f"{folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{folder}: cannot write there (permission denied)")
    return missing


def _remove_folders(made: list[Path]) -> None:
    """Remove the folders a recording made, deepest first, where they are still empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return
