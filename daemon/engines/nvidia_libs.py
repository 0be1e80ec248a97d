"""Imports of NVIDIA's Python bindings (TensorRT, cuda-python), each with the one line that says
where it comes from. Nothing here imports them until asked, so the module loads anywhere."""

from __future__ import annotations

from typing import Any

from stylecast.core.errors import ConfigError

MISSING_TENSORRT = ("TensorRT is not installed: on a Jetson it comes with JetPack "
                    "(python3-libnvinfer); use a venv with --system-site-packages")
MISSING_CUDA = ("cuda-python is not installed: pip install cuda-python (the major version of "
                "the CUDA that JetPack ships, e.g. 'cuda-python>=12,<13' on JetPack 6)")


def import_tensorrt() -> Any:
    """The tensorrt module, or a ConfigError saying where it comes from."""
    try:
        import tensorrt
    except (ImportError, OSError) as err:  # OSError: the module is there, libnvinfer is not
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{MISSING_TENSORRT} ({reason})") from None
    return tensorrt


def optional_cudart() -> Any | None:
    """cuda-python's CUDA runtime binding, or None where cuda-python is not installed."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError:
            return None
    return cudart


def import_cudart() -> Any:
    """cuda-python's CUDA runtime binding, or a ConfigError saying how to install it."""
    cudart = optional_cudart()
    if cudart is None:
        raise ConfigError(MISSING_CUDA)
    return cudart
