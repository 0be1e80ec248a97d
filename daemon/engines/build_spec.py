"""What an engine build needs and reports: the spec handed to a build backend, the backend's
small interface (`tensorrt_build` is the real one; tests bring a stand-in), and its callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stylecast.core.errors import StylecastError
from stylecast.daemon.engines.precision import Precision

Shape = tuple[int, ...]

# progress(phase, done, total) -> False to cancel the build; anything else continues.
Progress = Callable[[str, int, int], "bool | None"]
# notify(seconds_elapsed): the daemon extends systemd's start timeout while a build runs.
Notify = Callable[[float], None]

class EngineBuildError(StylecastError):
    """TensorRT could not build the engine (exit 1: out of memory on a Jetson can be transient)."""


@dataclass(frozen=True)
class BuildSpec:
    """What the build backend needs besides the ONNX bytes."""

    precision: Precision
    input_name: str
    # min/opt/max shapes of the input tensor in its own layout; None for a static model.
    input_shapes: tuple[Shape, Shape, Shape] | None
    workspace_mib: int
    timing_cache: Path | None
    source: str  # the ONNX path, for messages


class BuildBackend(Protocol):
    """The small interface tensorrt_build offers (and test stand-ins copy)."""

    def tensorrt_version(self) -> str: ...

    def gpu(self) -> tuple[str, str]: ...  # (name, compute capability "8.7")

    def build(self, onnx_bytes: bytes, spec: BuildSpec, progress: Progress | None) -> bytes: ...


