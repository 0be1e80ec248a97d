"""Engine precision: which one a model runs at, and which ones an artifact can be built into."""

from __future__ import annotations

from typing import Literal

from stylecast.core.artifact import Contract
from stylecast.core.errors import ArtifactError, ConfigError

Precision = Literal["fp32", "fp16", "int8"]

# Which engine precisions each ONNX precision can be built into. An INT8 (Q/DQ) model is built as
# INT8 only; FP16 comes from the FP32 export by a builder flag, or from an FP16 ONNX.
BUILDABLE_FROM: dict[str, set[str]] = {
    "int8": {"int8"},
    "fp16": {"fp32", "fp16"},
    "fp32": {"fp32"},
}


def choose_precision(requested: str | None, model_precision: str) -> str:
    """The engine precision: as configured, else int8 for an INT8 (Q/DQ) model, fp16 otherwise."""
    if requested is not None:
        return requested
    return "int8" if model_precision == "int8" else "fp16"


def check_precision(contract: Contract, precision: str, source: str) -> None:
    """Refuse engine precisions the ONNX cannot be built into, before any TensorRT work."""
    if precision not in BUILDABLE_FROM:
        raise ConfigError(f"precision {precision!r}: expected one of fp16, int8, fp32")
    if contract.precision in BUILDABLE_FROM[precision]:
        return
    if precision == "int8":
        raise ArtifactError(
            f"{source} has precision {contract.precision}; an int8 engine needs explicit Q/DQ "
            f"quantization: quantize it first: stylecast-export quantize {source} -o "
            "MODEL-int8.onnx --precision int8 --target tensorrt --calib DIR")
    raise ArtifactError(f"{source} has precision {contract.precision} and builds only as "
                        f"{' or '.join(sorted(_engine_precisions(contract.precision)))}, "
                        f"not {precision}")


def _engine_precisions(onnx_precision: str) -> set[str]:
    return {engine for engine, sources in BUILDABLE_FROM.items() if onnx_precision in sources}
