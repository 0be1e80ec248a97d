"""The `[teacher]` section of the training options: which teacher a run uses and how to run it.

One place for everything a teacher takes, so it comes from the same three sources as every other
option (defaults, a TOML preset's `[teacher]` table, `--set teacher.KEY=VALUE`), is validated
with them (one line naming the key and the value), is written to the run's options.json and comes
back with `--resume`. `source` and `key` are filled in by `stylecast-train distill` itself.

The tensor keys (layout, dtype, color_order, value_range, output_value_range, size_multiple)
describe an ONNX model that neither a stylecast contract nor its graph describes fully; "auto"
(the default) takes them from the model. They apply to `--teacher FILE.onnx` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

AUTO = "auto"
IO_KEYS = ("layout", "dtype", "color_order", "value_range", "output_value_range",
           "size_multiple")


def _parse_range(value: Any) -> tuple[float, float] | None:
    if value is None or value == AUTO:
        return None
    parts: Sequence[Any] = value.split(",") if isinstance(value, str) else value
    if isinstance(parts, (int, float)) or len(parts) != 2:
        raise ValueError("must be 'auto' or two numbers 'low,high' such as 0,1")
    try:
        low, high = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError("must be 'auto' or two numbers 'low,high' such as 0,1") from None
    if not low < high:
        raise ValueError("must have low < high")
    return low, high


def _format_range(value: tuple[float, float] | None) -> str:
    return AUTO if value is None else ",".join(f"{v:g}" for v in value)


RangeOption = Annotated[tuple[float, float] | None, BeforeValidator(_parse_range),
                        PlainSerializer(_format_range)]


class TeacherOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    source: str = Field("", description="the teacher as given to distill; recorded for --resume")
    key: str = Field("", description="the teacher's cache key; --resume refuses another")
    threads: int = Field(0, ge=0, description="ONNX Runtime threads per render (0: one per core)")
    cache_dir: str = Field("", description="render cache; '' = $XDG_CACHE_HOME/stylecast/teachers")
    layout: Literal["auto", "HWC", "NHWC", "NCHW"] = AUTO
    dtype: Literal["auto", "float32", "float16", "uint8"] = AUTO
    color_order: Literal["auto", "RGB", "BGR"] = AUTO
    value_range: RangeOption = Field(None, description="input values: '0,1', '-1,1', '0,255'")
    output_value_range: RangeOption = Field(None, description="output values (auto: the graph's "
                                            "final op: Tanh -1,1, Sigmoid 0,1; else as input)")
    size_multiple: int = Field(0, ge=0, description="H and W multiple of a dynamic-size "
                                                    "model; 0: its contract's, else 8")

    def given_io_keys(self) -> list[str]:
        """The tensor keys set to something other than "auto"."""
        defaults = TeacherOptions()
        return [key for key in IO_KEYS if getattr(self, key) != getattr(defaults, key)]
