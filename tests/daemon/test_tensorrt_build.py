"""Real TensorRT builds of real stylecast artifacts (runs only where TensorRT and a GPU exist).

On a Jetson (or a desktop with TensorRT and an NVIDIA GPU) these tests build engines through the
same `ensure_engine` path the daemon uses, deserialize them and check their I/O tensors against
the artifact contract. Everywhere else they are skipped with the reason; the cache logic around
the builder is covered by tests/daemon/test_engine_cache.py.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from stylecast.core.artifact import read_onnx_contract, read_sidecar
from stylecast.core.errors import ConfigError
from stylecast.daemon.engines import tensorrt_build
from stylecast.daemon.engines.engine_cache import ensure_engine
from stylecast.export.engine_command import engine_command

# The artifact builder is shared with the cache tests (tests/ is on sys.path under pytest).
from support.artifact_models import save_artifact

trt = pytest.importorskip(
    "tensorrt",
    reason="TensorRT is not installed here (it ships with JetPack on Jetsons); the builder's "
    "TensorRT calls run only on such a machine",
)


@pytest.fixture(scope="module", autouse=True)
def _needs_a_gpu():
    try:
        tensorrt_build.gpu()
    except ConfigError as err:
        pytest.skip(f"TensorRT is installed but no CUDA GPU answers: {err}")


def deserialize(path):
    runtime = trt.Runtime(tensorrt_build.trt_logger())
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    assert engine is not None
    return engine


def io_tensors(engine) -> dict[str, tuple]:
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    return {name: (engine.get_tensor_mode(name), engine.get_tensor_dtype(name)) for name in names}


def test_dynamic_uint8_engine_matches_its_contract(tmp_path):
    model = save_artifact(tmp_path / "mosaic.onnx")
    contract = read_onnx_contract(model)
    cache = tmp_path / "cache"
    path = ensure_engine(model, cache_dir=cache, precision="fp16", size=(96, 128),
                         max_size=(192, 256))
    engine = deserialize(path)
    assert io_tensors(engine) == {
        contract.input.name: (trt.TensorIOMode.INPUT, trt.uint8),
        contract.output.name: (trt.TensorIOMode.OUTPUT, trt.uint8),
    }
    shapes = [tuple(dims) for dims in engine.get_tensor_profile_shape(contract.input.name, 0)]
    assert shapes == [(64, 64, 3), (96, 128, 3), (192, 256, 3)]
    assert read_sidecar(path)[0].precision == "fp16"
    timing_caches = list(cache.glob("tensorrt-*.timing-cache"))
    assert len(timing_caches) == 1 and timing_caches[0].stat().st_size > 0

    mtime = path.stat().st_mtime_ns
    assert ensure_engine(model, cache_dir=cache, precision="fp16", size=(96, 128),
                         max_size=(192, 256)) == path
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_static_and_float_io_engines(tmp_path):
    static = save_artifact(tmp_path / "static.onnx", size=(96, 128))
    engine = deserialize(ensure_engine(static, cache_dir=tmp_path / "c", precision="fp32"))
    assert tuple(engine.get_tensor_shape("image")) == (96, 128, 3)

    float_io = save_artifact(tmp_path / "float.onnx", float_io=True)
    engine = deserialize(ensure_engine(float_io, cache_dir=tmp_path / "c", precision="fp16",
                                       size=(48, 64)))
    assert io_tensors(engine)["image"] == (trt.TensorIOMode.INPUT, trt.float32)
    shapes = [tuple(dims) for dims in engine.get_tensor_profile_shape("image", 0)]
    assert shapes == [(1, 3, 48, 64)] * 3


def test_engine_command_builds_into_the_output(tmp_path):
    model = save_artifact(tmp_path / "mosaic.onnx")
    output = tmp_path / "out" / "mosaic.engine"
    args = argparse.Namespace(model=model, output=output, precision="fp16", size=(96, 128),
                              max_size=None, workspace=256, timing_cache=None, force=False)
    assert engine_command(args) == 0
    assert io_tensors(deserialize(output)).keys() == {"image", "stylized"}


def test_engine_output_matches_onnx_runtime(tmp_path, photo_rgb):
    """Runs the engine with torch CUDA tensors as buffers (only where torch has CUDA)."""
    torch = pytest.importorskip("torch", reason="running the engine here uses torch CUDA buffers")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    import onnxruntime as ort

    model = save_artifact(tmp_path / "mosaic.onnx")
    engine = deserialize(ensure_engine(model, cache_dir=tmp_path / "c", precision="fp32",
                                       size=(96, 128)))
    frame = np.ascontiguousarray(photo_rgb[:96, :128])
    context = engine.create_execution_context()
    image = torch.from_numpy(frame).cuda()
    stylized = torch.empty_like(image)
    context.set_input_shape("image", tuple(image.shape))
    context.set_tensor_address("image", image.data_ptr())
    context.set_tensor_address("stylized", stylized.data_ptr())
    stream = torch.cuda.current_stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"image": frame})
    difference = np.abs(stylized.cpu().numpy().astype(int) - expected.astype(int))
    assert difference.max() <= 1
