"""The optional libraries and the pip extra that brings each: one wording in every message.

    needs("recording video", "opencv")
    -> "recording video needs OpenCV: pip install 'stylecast[video]'"
    needs("reading GIFs", "opencv", "pillow")
    -> "reading GIFs needs OpenCV or Pillow: pip install 'stylecast[video]' or 'stylecast[pillow]'"

The extras are pyproject.toml's [project.optional-dependencies]; tests/core/test_extras.py checks
that each one named here is there and brings the library.
"""

from __future__ import annotations

# library key -> (its name in messages, the stylecast extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "opencv": ("OpenCV", "video"),
    "pillow": ("Pillow", "pillow"),
    "openvino": ("OpenVINO", "openvino"),
    "av": ("PyAV", "rtsp"),
    "pyvirtualcam": ("pyvirtualcam", "v4l2"),
    "prometheus": ("prometheus-client", "daemon"),
}


def needs(purpose: str, *libraries: str) -> str:
    """'<purpose> needs A or B: pip install 'stylecast[a]' or 'stylecast[b]''."""
    names = " or ".join(EXTRAS[library][0] for library in libraries)
    extras = " or ".join(f"'stylecast[{EXTRAS[library][1]}]'" for library in libraries)
    return f"{purpose} needs {names}: pip install {extras}"
