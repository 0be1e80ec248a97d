"""The TensorRT builder (stylecast.daemon.engines.tensorrt_build): its own logic against the shared
TensorRT stand-in everywhere, and real TensorRT builds where TensorRT and a GPU exist.

Everywhere: `build` runs against tests/support/tensorrt_standin.py, a stand-in of the `tensorrt`
module with TensorRT's Python API names (Builder, NetworkDefinitionCreationFlag, OnnxParser,
BuilderFlag, MemoryPoolType, IProgressMonitor, ILogger, ...) as TensorRT 8.5 and 10.3 have them,
which records what it was asked: the network flags, the precision flags, the timing cache read
from and written to its file, the progress monitor's phases and cancel, the logger, and the GPU
query's fallback from cuda-python to the driver. ONNX models are real (tiny) ones.

On a Jetson (or a desktop with TensorRT and an NVIDIA GPU) the tests marked `on_real_tensorrt`
build engines through the same `ensure_engine` path the daemon uses, deserialize them and check
their I/O tensors against the artifact contract. Everywhere else they are skipped with the
reason; the cache logic around the builder is covered by tests/daemon/test_engine_cache.py.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import sys

import numpy as np
import pytest

from stylecast.core.artifact import read_onnx_contract, read_sidecar
from stylecast.core.errors import ArtifactError, ConfigError
from stylecast.daemon.engines import tensorrt_build, tensorrt_engine
from stylecast.daemon.engines.build_spec import BuildSpec, EngineBuildError
from stylecast.daemon.engines.engine_cache import ensure_engine
from stylecast.daemon.engines.tensorrt_engine import TensorrtEngine
from stylecast.export.engine_command import engine_command

# The artifact builder is shared with the cache tests (tests/ is on sys.path under pytest).
from support.artifact_models import save_artifact
from support.tensorrt_standin import FakeCudart, FakeTensorrt, ILogger
from support.tiny_models import write_tiny_model

try:
    import tensorrt as trt
except (ImportError, OSError):  # OSError: the module is there, libnvinfer is not
    trt = None

needs_tensorrt = pytest.mark.skipif(
    trt is None,
    reason="TensorRT is not installed here (it ships with JetPack on Jetsons): this test builds "
    "and runs a real engine; the builder's own logic is tested against the stand-in",
)


def on_real_tensorrt(test):
    """Runs only where TensorRT is installed and a CUDA GPU answers; skipped elsewhere."""
    return needs_tensorrt(pytest.mark.usefixtures("cuda_gpu_answers")(test))


@pytest.fixture(scope="module")
def cuda_gpu_answers():
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


@on_real_tensorrt
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


@on_real_tensorrt
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


@on_real_tensorrt
def test_engine_command_builds_into_the_output(tmp_path):
    model = save_artifact(tmp_path / "mosaic.onnx")
    output = tmp_path / "out" / "mosaic.engine"
    args = argparse.Namespace(model=model, output=output, precision="fp16", size=(96, 128),
                              max_size=None, workspace=256, timing_cache=None, force=False)
    assert engine_command(args) == 0
    assert io_tensors(deserialize(output)).keys() == {"image", "stylized"}


@on_real_tensorrt
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


# --- The builder's own logic, against the TensorRT stand-in --------------------------------------

DYNAMIC_SHAPES = ((16, 16, 3), (48, 64, 3), (96, 128, 3))
WORKSPACE_MIB = 256
TRT_LOG = "stylecast.daemon.engines.tensorrt_build"


@pytest.fixture
def standin(monkeypatch):
    """install(version, **options) -> the FakeTensorrt that `import tensorrt` gives from now on.
    The process's TensorRT logger is reset too (tensorrt_build makes it once per process)."""

    def install(version: str = "10.3.0", **options) -> FakeTensorrt:
        fake = FakeTensorrt(version, **options)
        monkeypatch.setitem(sys.modules, "tensorrt", fake)
        monkeypatch.setattr(tensorrt_build, "_logger", None)
        return fake

    return install


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {"static": write_tiny_model(folder / "static.onnx", height=48, width=64),
            "dynamic": write_tiny_model(folder / "dynamic.onnx"),
            "int8": write_tiny_model(folder / "int8.onnx", height=48, width=64,
                                     precision="int8")}


def build_spec(model, precision="fp16", *, shapes=None, timing_cache=None) -> BuildSpec:
    return BuildSpec(precision=precision, input_name="image", input_shapes=shapes,
                     workspace_mib=WORKSPACE_MIB, timing_cache=timing_cache, source=str(model))


def build(model, precision="fp16", progress=None, **spec_options) -> bytes:
    return tensorrt_build.build(model.read_bytes(), build_spec(model, precision, **spec_options),
                                progress)


@pytest.mark.parametrize(("version", "precision", "network_flags", "builder_flags"), [
    # TensorRT 10: explicit batch is the only mode (the flag is deprecated and not passed); an
    # INT8 (Q/DQ) model is built strongly typed, with no precision flags (they are refused there).
    ("10.3.0", "fp32", [], []),
    ("10.3.0", "fp16", [], ["FP16"]),
    ("10.3.0", "int8", ["STRONGLY_TYPED"], []),
    # TensorRT 8.5 (JetPack 5.1): explicit batch must be asked for; no strongly typed networks,
    # so INT8 is built weakly typed with the INT8 and FP16 flags.
    ("8.5.2", "fp32", ["EXPLICIT_BATCH"], []),
    ("8.5.2", "fp16", ["EXPLICIT_BATCH"], ["FP16"]),
    ("8.5.2", "int8", ["EXPLICIT_BATCH"], ["INT8", "FP16"]),
])
def test_network_and_precision_flags_per_tensorrt_version(standin, onnx_models, caplog, version,
                                                          precision, network_flags,
                                                          builder_flags):
    fake = standin(version)
    model = onnx_models["int8" if precision == "int8" else "static"]
    with caplog.at_level(logging.WARNING, logger=TRT_LOG):
        engine = build(model, precision)
    assert isinstance(engine, bytes)
    built = FakeTensorrt.describe(engine)
    assert built == fake.builds[-1]
    assert built["network_flags"] == network_flags
    assert built["builder_flags"] == builder_flags
    assert built["workspace_bytes"] == WORKSPACE_MIB << 20
    assert built["profiles"] == [] and built["inputs"] == {"image": [48, 64, 3]}
    assert caplog.records == []  # no deprecated flag passed, nothing refused


def test_int8_needs_a_gpu_with_fast_int8(standin, onnx_models):
    for version in ("8.5.2", "10.3.0"):
        fake = standin(version, fast_int8=False)
        with pytest.raises(ConfigError, match=r"no fast INT8 .* build an fp16 engine"):
            build(onnx_models["int8"], "int8")
        assert fake.builds == []


def test_fp16_on_a_gpu_without_fast_fp16_warns_and_builds(standin, onnx_models, caplog):
    standin("8.5.2", fast_fp16=False)
    with caplog.at_level(logging.WARNING, logger=TRT_LOG):
        built = FakeTensorrt.describe(build(onnx_models["static"], "fp16"))
    assert built["builder_flags"] == ["FP16"]
    assert "this GPU has no fast FP16" in caplog.text


def test_a_tensorrt_without_the_platform_queries_is_trusted(standin, onnx_models):
    """Newer TensorRT drops Builder.platform_has_fast_fp16/int8: not having them is no error."""
    fake = standin("10.3.0", fast_fp16=None, fast_int8=None)
    assert FakeTensorrt.describe(build(onnx_models["static"], "fp16"))["builder_flags"] == ["FP16"]
    assert not hasattr(fake.builders[0], "platform_has_fast_int8")
    build(onnx_models["int8"], "int8")


def test_a_tensorrt_without_precision_flags_says_so(standin, onnx_models):
    """A TensorRT with no FP16/INT8 builder flag (strongly typed only) cannot build weakly typed
    fp16: a config error naming the flag; an INT8 model still builds, strongly typed."""
    fake = standin("10.3.0", builder_flags={"DEBUG": 2, "REFIT": 5})
    with pytest.raises(ConfigError, match=r"TensorRT 10\.3\.0 has no FP16 builder flag"):
        build(onnx_models["static"], "fp16")
    assert FakeTensorrt.describe(build(onnx_models["int8"], "int8"))["network_flags"] == [
        "STRONGLY_TYPED"]
    assert len(fake.builds) == 1


def test_a_dynamic_model_gets_one_profile_with_the_specs_shapes(standin, onnx_models):
    standin()
    built = FakeTensorrt.describe(build(onnx_models["dynamic"], shapes=DYNAMIC_SHAPES))
    assert built["inputs"] == {"image": [-1, -1, 3]}
    assert built["profiles"] == [{"image": [list(shape) for shape in DYNAMIC_SHAPES]}]
    # and the stand-in is strict: without the profile there would be no engine
    with pytest.raises(EngineBuildError, match="no optimization profile"):
        build(onnx_models["dynamic"], shapes=None)


def test_a_refused_profile_is_an_artifact_error(standin, onnx_models):
    standin()
    backwards = (DYNAMIC_SHAPES[2], DYNAMIC_SHAPES[1], DYNAMIC_SHAPES[0])
    with pytest.raises(ArtifactError, match=r"refused the shape profile .* for input 'image'"):
        build(onnx_models["dynamic"], shapes=backwards)


def test_parser_errors_are_one_line_naming_the_model(standin, onnx_models, tmp_path):
    fake = standin()
    fake.parse_errors = ["In node 2 (importClip):  UNSUPPORTED_NODE:\n    Assertion failed",
                         "second   error"]
    model = onnx_models["static"]
    with pytest.raises(ArtifactError) as err:
        build(model)
    message = str(err.value)
    assert message == (f"{model}: TensorRT 10.3.0 cannot parse this model: In node 2 "
                       "(importClip): UNSUPPORTED_NODE: Assertion failed; second error")
    fake.parse_errors = []
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match=r"cannot parse this model: .*failed to parse ONNX"):
        build(not_onnx)
    assert fake.builds == []


# --- the timing cache ---


@pytest.fixture
def atomic_writes(monkeypatch):
    """Every atomic_write_bytes call tensorrt_build makes, passed on to the real one."""
    calls = []
    real = tensorrt_build.atomic_write_bytes

    def record(target, data):
        calls.append((target, bytes(data)))
        real(target, data)

    monkeypatch.setattr(tensorrt_build, "atomic_write_bytes", record)
    return calls


def test_timing_cache_is_created_saved_atomically_and_reused(standin, onnx_models, tmp_path,
                                                             atomic_writes):
    fake = standin()
    cache_file = tmp_path / "tensorrt.timing-cache"
    first = FakeTensorrt.describe(build(onnx_models["static"], timing_cache=cache_file))
    assert fake.timing_caches[0].loaded_from == b""  # no file yet: a new cache
    assert first["timed_layers"] and first["cached_layers"] == []
    saved = cache_file.read_bytes()
    assert atomic_writes == [(cache_file, saved)]
    assert saved == bytes(fake.timing_caches[0].serialize())
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache_file.name]  # no temp file left

    second = FakeTensorrt.describe(build(onnx_models["static"], timing_cache=cache_file))
    config = fake.configs[-1]
    assert fake.timing_caches[-1].loaded_from == saved  # read from the file
    assert config.timing_cache_calls == [(fake.timing_caches[-1], False)]  # mismatch not ignored
    assert second["timed_layers"] == [] and second["cached_layers"] == first["timed_layers"]
    assert len(atomic_writes) == 2 and atomic_writes[1] == (cache_file, cache_file.read_bytes())


def test_without_a_timing_cache_file_a_fresh_cache_is_used_and_nothing_written(
        standin, onnx_models, atomic_writes):
    fake = standin()
    build(onnx_models["static"], timing_cache=None)
    assert [cache.loaded_from for cache in fake.timing_caches] == [b""]
    assert fake.configs[0].timing_cache is fake.timing_caches[0]
    assert atomic_writes == []


@pytest.mark.parametrize("damage", ["another GPU", "garbage", "garbage that raises"])
def test_an_unusable_timing_cache_is_replaced_by_a_fresh_one(standin, onnx_models, tmp_path,
                                                            caplog, damage):
    cache_file = tmp_path / "tensorrt.timing-cache"
    if damage == "another GPU":
        other = FakeTensorrt(gpu_name="Other GPU")
        cache_file.write_bytes(b"|".join([other.timing_cache_header(), b"layer"]))
    else:
        cache_file.write_bytes(b"\x00garbage")
    fake = standin(gpu_name="Fake GPU")
    fake.damaged_timing_cache_raises = damage == "garbage that raises"
    with caplog.at_level(logging.WARNING, logger=TRT_LOG):
        build(onnx_models["static"], timing_cache=cache_file)
    assert f"{cache_file}: timing cache is from another GPU or TensorRT version or is damaged" \
        in caplog.text
    used = fake.configs[0].timing_cache
    assert used is not None and used.loaded_from == b""
    assert cache_file.read_bytes() == bytes(used.serialize())
    assert cache_file.read_bytes().startswith(fake.timing_cache_header())


def test_a_failed_build_leaves_the_timing_cache_file_alone(standin, onnx_models, tmp_path):
    fake = standin()
    cache_file = tmp_path / "tensorrt.timing-cache"
    build(onnx_models["static"], timing_cache=cache_file)
    before = cache_file.read_bytes()
    fake.build_error = "Out of memory"
    with pytest.raises(EngineBuildError):
        build(onnx_models["static"], "fp32", timing_cache=cache_file)
    assert cache_file.read_bytes() == before


# --- the progress monitor ---

PHASES = [("Building engine", 0, 2), ("Building engine", 1, 2), ("Building engine", 2, 2),
          ("Timing layers", 0, 3), ("Timing layers", 1, 3), ("Timing layers", 2, 3),
          ("Timing layers", 3, 3)]


def test_progress_monitor_forwards_the_phases(standin, onnx_models):
    fake = standin()
    seen = []
    build(onnx_models["static"], progress=lambda *report: seen.append(report))
    assert seen == PHASES
    monitor = fake.configs[0].progress_monitor
    assert isinstance(monitor, fake.IProgressMonitor) and not monitor.cancelled
    assert monitor._totals == {}  # every phase finished


@pytest.mark.parametrize("how", ["returns False", "Ctrl-C"])
def test_progress_callback_cancels_the_build(standin, onnx_models, how):
    fake = standin()
    seen = []

    def progress(phase, done, total):
        seen.append((phase, done, total))
        if (phase, done) == ("Timing layers", 1):
            if how == "Ctrl-C":
                raise KeyboardInterrupt
            return False
        return None

    with pytest.raises(EngineBuildError, match="the engine build was cancelled"):
        build(onnx_models["static"], progress=progress)
    assert seen == PHASES[:5]  # TensorRT stopped at the step that said no
    assert fake.builds == [] and fake.configs[0].progress_monitor.cancelled


def test_a_failing_progress_callback_is_logged_and_the_build_goes_on(standin, onnx_models,
                                                                     caplog):
    fake = standin()

    def progress(phase, done, total):
        raise ValueError("display gone")

    with caplog.at_level(logging.ERROR, logger=TRT_LOG):
        build(onnx_models["static"], progress=progress)
    assert len(fake.builds) == 1
    assert caplog.text.count("engine build: the progress callback failed") == len(PHASES)
    assert "display gone" in caplog.text


def test_no_progress_monitor_on_tensorrt_8_or_without_a_callback(standin, onnx_models):
    seen = []
    fake = standin("8.5.2")  # no IProgressMonitor: setting config.progress_monitor would fail
    assert not hasattr(fake, "IProgressMonitor")
    build(onnx_models["static"], progress=lambda *report: seen.append(report))
    assert seen == [] and len(fake.builds) == 1
    fake = standin("10.3.0")
    build(onnx_models["static"], progress=None)
    assert fake.configs[0].progress_monitor is None and len(fake.builds) == 1


# --- the logger ---


def test_logger_forwards_to_python_logging_by_severity(standin, onnx_models, caplog):
    fake = standin()
    fake.build_messages = [(ILogger.Severity.WARNING, "Weights clamped"),
                           (ILogger.Severity.INFO, "Detected 1 input"),
                           (ILogger.Severity.VERBOSE, "Tactic 0x1 took 0.1 ms")]
    with caplog.at_level(logging.INFO, logger=TRT_LOG):
        build(onnx_models["static"])
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "TensorRT: Weights clamped")]  # INFO and VERBOSE only at debug level
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=TRT_LOG):
        build(onnx_models["static"])
    levels = {r.getMessage(): r.levelname for r in caplog.records}
    assert levels["TensorRT: Weights clamped"] == "WARNING"
    assert levels["TensorRT: Detected 1 input"] == "DEBUG"
    assert levels["TensorRT: Tactic 0x1 took 0.1 ms"] == "DEBUG"


def test_the_latest_errors_are_the_build_error_message(standin, onnx_models, caplog):
    fake = standin()
    fake.build_messages = [(ILogger.Severity.ERROR, "first"),
                           (ILogger.Severity.INTERNAL_ERROR, "second\n   line"),
                           (ILogger.Severity.ERROR, "third")]
    fake.build_error = "Requested amount of GPU memory (2 GB) could not be allocated"
    model = onnx_models["static"]
    with caplog.at_level(logging.ERROR, logger=TRT_LOG), \
            pytest.raises(EngineBuildError) as err:
        build(model)
    assert str(err.value) == (
        f"{model}: TensorRT 10.3.0 could not build the engine: second line | third | "
        "Requested amount of GPU memory (2 GB) could not be allocated")  # the last three
    assert "TensorRT: first" in caplog.text
    # A later build's message has only its own errors, not the ones before it.
    fake.build_messages = []
    fake.build_error = "Out of memory"
    with pytest.raises(EngineBuildError) as err:
        build(model)
    assert str(err.value).endswith("could not build the engine: Out of memory")


def test_one_logger_per_process_given_to_builder_and_parser(standin, onnx_models):
    fake = standin()
    build(onnx_models["static"])
    build(onnx_models["static"])
    logger = tensorrt_build.trt_logger()
    assert isinstance(logger, ILogger)  # the stand-in also checks ILogger.__init__ was called
    assert [builder.logger for builder in fake.builders] == [logger, logger]
    assert tensorrt_build.tensorrt_version() == "10.3.0"


# --- which GPU ---


def test_gpu_asks_cuda_python_first(monkeypatch):
    monkeypatch.setattr(tensorrt_build, "optional_cudart",
                        lambda: FakeCudart(capability=(8, 7), name=b"Orin\x00\x00"))
    monkeypatch.setattr(tensorrt_build, "_gpu_from_driver",
                        lambda device: pytest.fail("the driver was asked though cuda-python was"))
    assert tensorrt_build.gpu() == ("Orin", "8.7")


@pytest.mark.parametrize("cuda_python", ["not installed", "no CUDA runtime library",
                                         "no device"])
def test_gpu_falls_back_to_the_driver(monkeypatch, cuda_python):
    cudart = {"not installed": None,
              "no CUDA runtime library": FakeCudart(library_missing=True),
              "no device": FakeCudart(fail="cudaGetDeviceProperties")}[cuda_python]
    asked = []
    monkeypatch.setattr(tensorrt_build, "optional_cudart", lambda: cudart)
    monkeypatch.setattr(tensorrt_build, "_gpu_from_driver",
                        lambda device: asked.append(device) or ("Xavier", "7.2"))
    assert tensorrt_build.gpu(1) == ("Xavier", "7.2")
    assert asked == [1]


def test_gpu_when_nothing_answers_is_a_config_error(monkeypatch):
    monkeypatch.setattr(tensorrt_build, "optional_cudart", lambda: None)
    monkeypatch.setattr(tensorrt_build, "_gpu_from_driver", lambda device: None)
    with pytest.raises(ConfigError, match=r"cannot identify the CUDA GPU .* install cuda-python"):
        tensorrt_build.gpu()


class FakeLibcuda:
    """libcuda.so.1's calls that _gpu_from_driver makes, through ctypes' by-reference arguments."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.fail_at = fail_at
        self.calls: list[str] = []

    def _result(self, name: str) -> int:
        self.calls.append(name)
        return 100 if name == self.fail_at else 0  # CUDA_ERROR_NO_DEVICE, CUDA_SUCCESS

    def cuInit(self, flags):
        assert flags == 0
        return self._result("cuInit")

    def cuDeviceGet(self, handle_ref, ordinal):
        handle_ref._obj.value = 40 + ordinal
        return self._result("cuDeviceGet")

    def cuDeviceGetName(self, buffer, length, handle):
        assert handle.value == 40 and length == len(buffer)
        buffer.value = b"Orin (nvgpu)"
        return self._result("cuDeviceGetName")

    def cuDeviceGetAttribute(self, value_ref, attribute, handle):
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75, _MINOR 76 (cuda.h)
        value_ref._obj.value = {75: 8, 76: 7}[attribute]
        return self._result(f"cuDeviceGetAttribute({attribute})")


def test_gpu_from_the_driver_library(monkeypatch):
    libcuda = FakeLibcuda()
    opened = []
    monkeypatch.setattr(ctypes, "CDLL", lambda name: opened.append(name) or libcuda)
    assert tensorrt_build._gpu_from_driver(0) == ("Orin (nvgpu)", "8.7")
    assert opened == ["libcuda.so.1"]
    failing = FakeLibcuda(fail_at="cuInit")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: failing)
    assert tensorrt_build._gpu_from_driver(0) is None
    assert failing.calls == ["cuInit"]  # stops at the first failure

    def no_library(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert tensorrt_build._gpu_from_driver(0) is None


# --- the whole path: the engine cache builds with tensorrt_build, the adapter runs the engine ---


def test_ensure_engine_builds_through_tensorrt_build_and_the_engine_runs(
        standin, onnx_models, monkeypatch, tmp_path, photo_rgb):
    fake = standin()
    cudart = FakeCudart(capability=(8, 7))
    monkeypatch.setattr(tensorrt_build, "optional_cudart", lambda: cudart)
    monkeypatch.setattr(tensorrt_engine, "import_cudart", lambda: cudart)
    model, cache = onnx_models["dynamic"], tmp_path / "engines"
    path = ensure_engine(model, cache_dir=cache, precision="fp16", size=(48, 64),
                         max_size=(96, 128))
    built = FakeTensorrt.describe(path.read_bytes())
    assert built["builder_flags"] == ["FP16"] and built["gpu"] == "Fake GPU"
    assert built["profiles"][0]["image"][1:] == [[48, 64, 3], [96, 128, 3]]
    assert read_sidecar(path)[0].precision == "fp16"
    (timing_cache,) = cache.glob("tensorrt-*.timing-cache")
    assert timing_cache.read_bytes() == bytes(fake.configs[0].timing_cache.serialize())
    assert ensure_engine(model, cache_dir=cache, precision="fp16", size=(48, 64),
                         max_size=(96, 128)) == path
    assert len(fake.builds) == 1  # the second call found it in the cache

    engine = TensorrtEngine(path, read_onnx_contract(model))
    try:
        frame = np.ascontiguousarray(photo_rgb[:48, :64])
        np.testing.assert_array_equal(engine(frame), 255 - frame)
    finally:
        engine.close()
