"""How the daemon runs its models: the `[engine]` section of stylecast.toml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def default_cache_dir() -> Path:
    """Where built TensorRT engines are cached: systemd's StateDirectory= when it set one."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / "engines"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stylecast" / "engines"


class EngineSettings(BaseModel):
    """Which runtime runs the model, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # auto: native TensorRT for .engine/.plan files, and for .onnx where TensorRT and a CUDA
    # binding are installed; otherwise ONNX Runtime, or OpenVINO where it is installed and
    # faster here (both are timed at load).
    runtime: Literal["auto", "onnxruntime", "openvino", "tensorrt"] = "auto"
    # ONNX Runtime execution providers in order of preference; empty = the best available of
    # tensorrt, cuda, cpu. (A tuple: settings are hashable, loaded engines are cached by them.)
    providers: tuple[Literal["tensorrt", "cuda", "cpu"], ...] = ()
    # Inference threads (ONNX Runtime intra-op threads, OpenVINO INFERENCE_NUM_THREADS); 0 = the
    # runtime's default (one per physical core).
    threads: int = Field(default=0, ge=0)
    # Precision of a TensorRT engine built from an ONNX model; unset = fp16 for an FP32/FP16
    # model, int8 for an INT8 (Q/DQ) one.
    precision: Literal["fp32", "fp16", "int8"] | None = None
    cache_dir: Path = Field(default_factory=default_cache_dir)
    workspace_mib: int = Field(default=1024, ge=16)


def threads_text(threads: int | None) -> str:
    """How an engine's description names its thread count (0 or None: the runtime's default)."""
    return f"{threads} thread{'s' * (threads != 1)}" if threads else "default threads"
