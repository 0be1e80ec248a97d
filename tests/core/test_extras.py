"""The extras that messages about a missing library name exist in pyproject.toml and bring it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from stylecast.core.extras import EXTRAS, needs

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {"opencv": "opencv-python-headless", "pillow": "pillow", "openvino": "openvino",
                 "prometheus": "prometheus-client", "av": "av", "pyvirtualcam": "pyvirtualcam"}


@pytest.mark.parametrize("library", sorted(EXTRAS))
def test_each_named_extra_exists_and_installs_the_library(library):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    extra = EXTRAS[library][1]
    assert extra in extras, f"pyproject.toml has no extra {extra!r}"
    names = [re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
             for requirement in extras[extra]]
    assert DISTRIBUTIONS[library] in names


def test_the_message_names_the_libraries_and_the_commands():
    assert needs("recording video", "opencv") == (
        "recording video needs OpenCV: pip install 'stylecast[video]'")
    assert needs("reading GIFs", "opencv", "pillow") == (
        "reading GIFs needs OpenCV or Pillow: pip install 'stylecast[video]' or "
        "'stylecast[pillow]'")
