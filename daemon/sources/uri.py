"""Source URIs: parse and validate them, and make the source each one names.

`scheme://location?param=value&...`; each scheme has a strict pydantic model for its query
parameters, so a typo or a bad value is a ConfigError of one line that names the URI and the
parameter. rtsp(s):// URIs are the camera's own and go to it whole, query included; gst://
takes everything after the scheme as a (URL-decoded) GStreamer pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ValidationError

from stylecast.core.errors import ConfigError
from stylecast.core.validation import describe
from stylecast.daemon.sources.base import FrameSource, redact
from stylecast.daemon.sources.opencv_capture import (
    CsiOptions,
    GstreamerSource,
    RtspSource,
    V4l2Options,
    V4l2Source,
    with_appsink,
)
from stylecast.daemon.sources.pattern import PatternOptions, TestPatternSource
from stylecast.daemon.sources.picamera2_camera import Picamera2Options, Picamera2Source
from stylecast.daemon.sources.video_file import FileOptions, VideoFileSource

SCHEMES: tuple[str, ...] = ("test", "file", "v4l2", "rtsp", "rtsps", "gst", "csi", "picamera2")

Options = TypeVar("Options", bound=BaseModel)
# Each builder gets the whole URI (for messages) and what follows "scheme://".
Builder = Callable[[str, str], FrameSource]


def open_source(uri: str) -> FrameSource:
    """The source `uri` names, validated but not opened (ConfigError on a bad URI)."""
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _BUILDERS:
        hint = " (a file is file://PATH)" if not sep else ""
        raise ConfigError(f"source '{redact(uri)}': unknown scheme{hint}; known: "
                          + ", ".join(f"{name}://" for name in SCHEMES))
    return _BUILDERS[scheme](uri, rest)


def check_source_uri(uri: str) -> None:
    """ConfigError naming the URI and its bad part, for config loading; opens nothing."""
    open_source(uri)


def split_location(uri: str, rest: str) -> tuple[str, dict[str, str]]:
    """'host/path?a=1&b=2' -> ('host/path' URL-decoded, {'a': '1', 'b': '2'})."""
    location, _, query = rest.partition("?")
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            raise ConfigError(f"source '{uri}': parameter '{key}' is given twice")
        params[key] = value
    return unquote(location), params


def parse_options(uri: str, model: type[Options], params: dict[str, str]) -> Options:
    try:
        return model.model_validate(params)
    except ValidationError as err:
        known = ", ".join(model.model_fields)
        scheme = uri.partition("://")[0]
        raise ConfigError(f"source '{uri}': " + describe(
            err, noun="parameter", unknown=f"is not known ({scheme}:// takes {known})")) from None


def camera_number(uri: str, location: str) -> int:
    """The N of csi://N and picamera2://N (0 when left out)."""
    if not location:
        return 0
    if not location.isdigit():
        raise ConfigError(f"source '{uri}': camera number '{location}' is not a whole number")
    return int(location)


def _test(uri: str, rest: str) -> FrameSource:
    location, params = split_location(uri, rest)
    if location:
        raise ConfigError(f"source '{uri}': test:// takes only parameters, not '{location}' "
                          "(e.g. test://?width=640&height=480&fps=30)")
    return TestPatternSource(uri, parse_options(uri, PatternOptions, params))


def _file(uri: str, rest: str) -> FrameSource:
    location, params = split_location(uri, rest)
    if not location:
        raise ConfigError(f"source '{uri}': no file path (file:///abs/clip.mp4 or "
                          "file://relative/clip.mp4)")
    path = Path(location).expanduser()
    return VideoFileSource(uri, path, parse_options(uri, FileOptions, params))


def _v4l2(uri: str, rest: str) -> FrameSource:
    location, params = split_location(uri, rest)
    if not location.startswith("/"):
        raise ConfigError(f"source '{uri}': expected a device path, e.g. v4l2:///dev/video0")
    return V4l2Source(uri, location, parse_options(uri, V4l2Options, params))


def _csi(uri: str, rest: str) -> FrameSource:
    location, params = split_location(uri, rest)
    options = parse_options(uri, CsiOptions, params)
    return GstreamerSource.for_csi(uri, camera_number(uri, location), options)


def _picamera2(uri: str, rest: str) -> FrameSource:
    location, params = split_location(uri, rest)
    options = parse_options(uri, Picamera2Options, params)
    return Picamera2Source(uri, camera_number(uri, location), options)


def _rtsp(uri: str, _rest: str) -> FrameSource:
    if not urlsplit(uri).hostname:
        raise ConfigError(f"source '{redact(uri)}': no host (rtsp://HOST[:PORT]/PATH)")
    return RtspSource(uri)


def _gst(uri: str, rest: str) -> FrameSource:
    pipeline = unquote(rest).strip()
    if not pipeline:
        raise ConfigError(f"source '{uri}': no pipeline (gst://v4l2src ! videoconvert ! ...)")
    return GstreamerSource(uri, with_appsink(pipeline), "GStreamer pipeline")


_BUILDERS: dict[str, Builder] = {
    "test": _test, "file": _file, "v4l2": _v4l2, "rtsp": _rtsp, "rtsps": _rtsp, "gst": _gst,
    "csi": _csi, "picamera2": _picamera2,
}
