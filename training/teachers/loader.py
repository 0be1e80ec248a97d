"""Pick a teacher kind by the value of `--teacher` and load it (as Frigate picks a detector plugin).

Each kind is one module of this package with `KIND` (its name), `claims(source)` (whether a
`--teacher` value is one of its) and `load(source, options)` (a `base.Teacher`). The first kind
that claims a value loads it; the torch checkpoint kind claims everything, so it comes last:

    multistyle:N[=W,...]   multistyle.py    Magenta's 26 styles and their blends
    style-image:FILE       arbitrary.py     any painting (what `--style-image FILE` gives)
    FILE.onnx              onnx_model.py    any image-to-image ONNX model
    FILE                   checkpoint.py    a stylecast checkpoint or a CycleGAN state dict
"""

from __future__ import annotations

from pathlib import Path

from stylecast.core.errors import ConfigError
from stylecast.training.teachers import arbitrary, checkpoint, multistyle, onnx_model
from stylecast.training.teachers.base import Teacher
from stylecast.training.teachers.options import TeacherOptions

KINDS = (multistyle, arbitrary, onnx_model, checkpoint)


def load_teacher(source: str | Path, options: TeacherOptions | None = None) -> Teacher:
    """The teacher `source` names; one-line errors (exit 78) for a bad value, file or option."""
    source = str(source)
    options = options or TeacherOptions()
    kind = next(kind for kind in KINDS if kind.claims(source))
    given = options.given_io_keys()
    if given and kind is not onnx_model:
        raise ConfigError(f"teacher.{given[0]} describes an ONNX model's tensors; teacher "
                          f"{source!r} is a {kind.KIND} teacher, which does not take it")
    return kind.load(source, options)


def style_image_source(path: str) -> str:
    """The `--teacher` value that `--style-image PATH` stands for."""
    return arbitrary.PREFIX + path


def command_line(source: str) -> str:
    """The distill flag that gives teacher `source`: --style-image PATH or --teacher SOURCE."""
    if arbitrary.claims(source):
        return f"--style-image {source.removeprefix(arbitrary.PREFIX)}"
    return f"--teacher {source}"
