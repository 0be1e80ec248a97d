"""A stand-in for the TensorRT build backend (stylecast.daemon.engines.build_spec.BuildBackend).

It is dependency injection for the three calls the engine cache makes (TensorRT version, GPU,
build), not a pretend TensorRT: it records each request and returns engine bytes derived from
what it was given, so a test sees exactly what the cache asked for and wrote.
"""

from __future__ import annotations

import hashlib
import time

from stylecast.daemon.engines.build_spec import BuildSpec


class RecordingBackend:
    """Records each build request; `delay_s` makes a build slow, `error` makes it fail."""

    def __init__(self, version="10.3.0", gpu=("Orin", "8.7"), delay_s=0.0, error=None):
        self.version, self.gpu_info = version, gpu
        self.delay_s, self.error = delay_s, error
        self.builds: list[tuple[bytes, BuildSpec]] = []

    def tensorrt_version(self) -> str:
        return self.version

    def gpu(self) -> tuple[str, str]:
        return self.gpu_info

    def build(self, onnx_bytes, spec, progress):
        self.builds.append((onnx_bytes, spec))
        if progress is not None:
            progress("Building engine", 0, 1)
        time.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return b"engine:" + hashlib.sha256(onnx_bytes).digest() + spec.precision.encode()
