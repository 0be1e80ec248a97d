"""The daemon's engines: runtime selection, ONNX Runtime providers and threads, frame fitting,
artifact errors, and the native TensorRT adapter.

ONNX Runtime runs for real on tiny stylecast artifacts (`255 - x` and `x + tint`, uint8 RGB in
and out, static and dynamic). TensorRT and CUDA do not exist here: their pure logic (precision,
sizes, dtypes, I/O names, zero-copy choice) is called directly, the engine cache is driven with
a recording build backend, and TensorrtEngine's own buffer/copy/stream handling runs against
small in-process stand-ins for tensorrt and cuda-python that do real memory copies (the "GPU"
computes 255 - x; tests/support/tensorrt_standin.py, shared with test_tensorrt_build.py). The
real TensorRT and CUDA calls run only on a Jetson or a desktop with both.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stylecast.core.artifact import read_onnx_contract, read_sidecar, write_sidecar
from stylecast.core.errors import ArtifactError, ConfigError, StylecastError
from stylecast.daemon.engines import (
    EngineSettings,
    FittedEngine,
    choose_runtime,
    frame_fit,
    load_engine,
    runtime_choice,
    tensorrt_engine,
)
from stylecast.daemon.engines.frame_fit import model_size, nearest_multiple, resize_bilinear
from stylecast.daemon.engines.onnxruntime_engine import (
    ORT_TENSORRT_CACHE,
    OnnxEngine,
    open_onnxruntime,
    provider_names,
    tensorrt_provider_options,
)
from stylecast.daemon.engines.tensorrt_engine import (
    TensorrtEngine,
    buffer_nbytes,
    choose_precision,
    cuda_check,
    engine_for_onnx,
    frame_hw,
    numpy_dtype,
    profile_size_range,
    split_io,
    use_zero_copy,
)

from support.build_backend import RecordingBackend
from support.contracts import make_contract
from support.hidden_imports import hide_package
from support.tensorrt_standin import STATIC_HW, FakeCudart, FakeTensorrt
from support.tiny_models import tiny_model, write_tiny_model

STATIC = STATIC_HW  # what the TensorRT stand-in's engine takes, and the static ONNX model
TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"


def tensorrt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "static": write_tiny_model(folder / "static.onnx", height=STATIC[0], width=STATIC[1]),
        "dynamic": write_tiny_model(folder / "dynamic.onnx"),
        "tint": write_tiny_model(folder / "tint.onnx", style="warm", tint=(40, 0, -40)),
        "int8": write_tiny_model(folder / "int8.onnx", precision="int8"),
    }


@pytest.fixture
def settings(tmp_path) -> EngineSettings:
    return EngineSettings(threads=1, cache_dir=tmp_path / "engines")


def crop(photo: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.ascontiguousarray(photo[100:100 + height, 200:200 + width])


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- Runtime selection --------------------------------------------------------------------------


def never(*_):
    raise AssertionError("TensorRT availability must not be asked here")


@pytest.mark.parametrize(("name", "runtime", "native", "expected"), [
    ("m.onnx", "auto", lambda: False, "onnxruntime"),
    ("m.onnx", "auto", lambda: True, "tensorrt"),
    ("m.ONNX", "auto", lambda: False, "onnxruntime"),
    ("m.engine", "auto", never, "tensorrt"),
    ("m.plan", "auto", never, "tensorrt"),
    ("m.onnx", "tensorrt", never, "tensorrt"),
    ("m.onnx", "onnxruntime", never, "onnxruntime"),
    ("m.onnx", "openvino", never, "openvino"),
])
def test_choose_runtime(name, runtime, native, expected):
    assert choose_runtime(Path(name), runtime, native) == expected


def test_choose_runtime_refuses_engines_under_onnxruntime_and_unknown_files():
    with pytest.raises(ConfigError, match=r"m\.engine: .* engine\.runtime = 'onnxruntime'"):
        choose_runtime(Path("m.engine"), "onnxruntime", never)
    with pytest.raises(ArtifactError, match=r"m\.pt: not a model \(expected ONNX or a TensorRT"):
        choose_runtime(Path("m.pt"), "auto", never)


def test_auto_runs_onnx_models_on_onnxruntime_without_tensorrt_and_openvino(models, settings,
                                                                            photo_rgb,
                                                                            monkeypatch):
    if tensorrt_engine.native_tensorrt_available():
        pytest.skip("tensorrt and cuda-python are installed here: auto picks native TensorRT")
    # With OpenVINO, auto times both (tests/daemon/test_openvino_engine.py).
    monkeypatch.setattr(runtime_choice, "openvino_available", lambda: False)
    engine = load_engine(models["static"], settings)
    try:
        assert isinstance(engine, FittedEngine)
        assert isinstance(engine.engine, OnnxEngine)
        assert engine.description == ("onnxruntime CPUExecutionProvider, 1 thread, static.onnx "
                                      "(fp32)")
        assert engine.contract == read_onnx_contract(models["static"])
        frame = crop(photo_rgb, *STATIC)
        np.testing.assert_array_equal(engine(frame), 255 - frame)
    finally:
        engine.close()


def test_tint_model_runs_through_load_engine(models, settings, photo_rgb):
    engine = load_engine(models["tint"], settings)
    frame = crop(photo_rgb, 48, 64)
    expected = np.clip(frame.astype(int) + np.array([40, 0, -40]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(engine(frame), expected)
    assert engine.contract.style == "warm"


# --- ONNX Runtime providers and threads ---------------------------------------------------------


def test_provider_names_best_available():
    assert provider_names([], ["AzureExecutionProvider", CPU]) == [CPU]
    assert provider_names([], [CPU, CUDA, TRT]) == [TRT, CUDA, CPU]
    assert provider_names([], []) == [CPU]


def test_provider_names_as_requested():
    assert provider_names(["cuda", "cpu"], [TRT, CUDA, CPU]) == [CUDA, CPU]
    assert provider_names(["cpu", "cpu"], [CPU]) == [CPU]


def test_unavailable_provider_is_a_config_error_naming_it_and_the_available_ones():
    with pytest.raises(ConfigError) as err:
        provider_names(["tensorrt", "cpu"], ["AzureExecutionProvider", CPU])
    message = one_line(err)
    assert "TensorrtExecutionProvider is not available" in message
    assert "available: AzureExecutionProvider, CPUExecutionProvider" in message


def test_unavailable_provider_through_load_engine(models, tmp_path):
    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    settings = EngineSettings(runtime="onnxruntime", providers=["cuda"], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"engine\.providers: CUDAExecutionProvider"):
        load_engine(models["static"], settings)


def test_explicit_cpu_provider(models, tmp_path):
    settings = EngineSettings(runtime="onnxruntime", providers=["cpu"], cache_dir=tmp_path)
    engine = open_onnxruntime(models["static"], settings)
    assert engine.session.get_providers() == [CPU]


@pytest.mark.parametrize(("threads", "text"), [(2, "2 threads"), (1, "1 thread"),
                                               (0, "default threads")])
def test_threads_are_applied_to_the_session(models, tmp_path, threads, text):
    engine = open_onnxruntime(models["dynamic"], EngineSettings(threads=threads,
                                                                cache_dir=tmp_path))
    assert engine.session.get_session_options().intra_op_num_threads == threads
    assert f", {text}, " in engine.description


def test_tensorrt_provider_gets_cache_and_precision_options(models, monkeypatch, tmp_path):
    """Where this onnxruntime has the TensorRT provider, it is passed with its options."""
    from stylecast.daemon.engines import onnxruntime_engine

    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CPU])
    calls = []

    def recording_engine(model, *, threads, providers):
        calls.append(providers)
        return OnnxEngine(model, threads=threads)  # CPU: no TensorRT here

    monkeypatch.setattr(onnxruntime_engine, "OnnxEngine", recording_engine)
    open_onnxruntime(models["static"], EngineSettings(cache_dir=tmp_path, workspace_mib=256))
    (name, options), cpu = calls[0]
    assert (name, cpu) == (TRT, CPU)
    cache = tmp_path / ORT_TENSORRT_CACHE
    assert cache.is_dir()
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(cache)
    assert options["trt_max_workspace_size"] == 256 << 20
    assert (options["trt_fp16_enable"], options["trt_int8_enable"]) == (True, False)


@pytest.mark.parametrize(("model", "precision", "fp16", "int8"), [
    ("static", None, True, False),
    ("static", "fp16", True, False),
    ("static", "fp32", False, False),
    ("int8", None, True, True),
])
def test_tensorrt_provider_precision(models, tmp_path, model, precision, fp16, int8):
    settings = EngineSettings(precision=precision, cache_dir=tmp_path)
    options = tensorrt_provider_options(read_onnx_contract(models[model]), settings, "m.onnx")
    assert (options["trt_fp16_enable"], options["trt_int8_enable"]) == (fp16, int8)


def test_tensorrt_provider_refuses_int8_for_an_unquantized_model(models, tmp_path):
    settings = EngineSettings(precision="int8", cache_dir=tmp_path)
    with pytest.raises(ArtifactError, match="quantize it first"):
        tensorrt_provider_options(read_onnx_contract(models["static"]), settings, "m.onnx")


# --- Frame fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "multiple", "expected"), [
    (480, 4, 480), (50, 4, 52), (49, 4, 48), (70, 4, 72), (1, 4, 4), (3, 8, 8), (1080, 32, 1088),
])
def test_nearest_multiple(side, multiple, expected):
    assert nearest_multiple(side, multiple) == expected


def test_model_size(models):
    static = read_onnx_contract(models["static"])
    dynamic = read_onnx_contract(models["dynamic"])
    assert model_size(static, (480, 640)) == STATIC
    assert model_size(dynamic, (480, 640)) == (480, 640)
    assert model_size(dynamic, (50, 70)) == (52, 72)
    assert model_size(dynamic, (1080, 1920), ((64, 64), (720, 1280))) == (720, 1280)
    assert model_size(dynamic, (20, 30), ((64, 64), (720, 1280))) == (64, 64)
    half = static.model_copy(update={"width": None})
    assert model_size(half, (50, 70)) == (STATIC[0], 72)


def test_static_model_with_another_frame_size_resizes_in_and_back(models, settings, photo_rgb):
    engine = load_engine(models["static"], settings)
    frame = crop(photo_rgb, 120, 160)
    output = engine(frame)
    assert output.shape == frame.shape and output.dtype == np.uint8
    shrunk = cv2.resize(frame, STATIC[::-1], interpolation=cv2.INTER_AREA)
    expected = cv2.resize(255 - shrunk, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(output.astype(int) - expected).max() <= 1
    # and the picture is still the inverted frame, only softer
    assert np.abs(output.astype(int) - (255 - frame.astype(int))).mean() < 12


def test_the_resize_is_logged_width_x_height(caplog):
    """Frames 25 wide and 14 high through a model 24 wide and 16 high: '25x14' and '24x16'."""
    def model(frame):
        return frame

    model.contract = make_contract(height=16, width=24)
    model.description = "a 24x16 model"
    engine = FittedEngine(model)
    with caplog.at_level("INFO", logger="stylecast.daemon.engines.frame_fit"):
        assert engine(np.zeros((14, 25, 3), np.uint8)).shape == (14, 25, 3)
    assert "frames of 25x14 are resized to 24x16 for a 24x16 model" in caplog.text


def test_dynamic_model_with_a_size_not_a_multiple_of_four(models, settings, photo_rgb):
    engine = load_engine(models["dynamic"], settings)
    seen = []
    inner = engine.engine
    engine.engine = lambda frame: seen.append(frame.shape) or inner(frame)
    frame = crop(photo_rgb, 50, 70)
    output = engine(frame)
    assert seen == [(52, 72, 3)]
    assert output.shape == (50, 70, 3)
    assert np.abs(output.astype(int) - (255 - frame.astype(int))).mean() < 12


@pytest.mark.parametrize(("model", "size"), [("static", STATIC), ("dynamic", (48, 64)),
                                             ("dynamic", (480, 640))])
def test_fitting_frames_pass_through_untouched(models, settings, photo_rgb, monkeypatch, model,
                                               size):
    def no_resize(*_):
        raise AssertionError("a fitting frame must not be resized")

    monkeypatch.setattr(frame_fit, "resize", no_resize)
    engine = load_engine(models[model], settings)
    received = []
    inner = engine.engine
    engine.engine = lambda frame: received.append(frame) or inner(frame)
    frame = crop(photo_rgb, *size) if size != (480, 640) else photo_rgb
    np.testing.assert_array_equal(engine(frame), 255 - frame)
    assert received[0] is frame  # no copy on the way in


def test_numpy_resize_matches_opencv_bilinear(photo_rgb):
    frame = crop(photo_rgb, 60, 80)
    for size in [(97, 131), (45, 50), (60, 80), (3, 7)]:
        ours = resize_bilinear(frame, size)
        theirs = cv2.resize(frame, size[::-1], interpolation=cv2.INTER_LINEAR)
        assert ours.shape == (*size, 3) and ours.dtype == np.uint8
        assert np.abs(ours.astype(int) - theirs).max() <= 1, size


def test_without_opencv_frames_are_resized_with_numpy(models, settings, photo_rgb, monkeypatch):
    monkeypatch.setattr(frame_fit, "_opencv", lambda: None)
    engine = load_engine(models["static"], settings)
    frame = crop(photo_rgb, 100, 150)
    expected = resize_bilinear(255 - resize_bilinear(frame, STATIC), (100, 150))
    np.testing.assert_array_equal(engine(frame), expected)


def test_flipped_frame_views_are_accepted(models, settings, photo_rgb):
    engine = load_engine(models["static"], settings)
    bgr = crop(photo_rgb, 120, 160)
    rgb_view = bgr[..., ::-1]  # negative strides, as a BGR camera frame flipped without a copy
    assert engine(rgb_view).shape == (120, 160, 3)


@pytest.mark.parametrize("frame", [
    np.zeros((64, 96, 3), np.float32),
    np.zeros((64, 96), np.uint8),
    np.zeros((64, 96, 4), np.uint8),
    np.zeros((1, 64, 96, 3), np.uint8),
    np.zeros((0, 96, 3), np.uint8),
    [[[0, 0, 0]]],
], ids=["float", "gray", "rgba", "batched", "empty", "list"])
def test_bad_frames_are_value_errors(models, settings, frame):
    engine = load_engine(models["dynamic"], settings)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        engine(frame)


# --- Artifact and installation errors -----------------------------------------------------------


def test_missing_model_file(settings, tmp_path):
    with pytest.raises(ArtifactError) as err:
        load_engine(tmp_path / "nowhere.onnx", settings)
    assert one_line(err) == f"{tmp_path / 'nowhere.onnx'}: no such model file"
    with pytest.raises(ArtifactError, match="no such model file"):
        load_engine(tmp_path, settings)


def test_a_file_that_is_not_onnx(settings, tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(ArtifactError) as err:
        load_engine(path, settings)
    assert one_line(err).startswith(f"{path}: ONNX Runtime cannot load it")


def test_onnx_without_a_contract(settings, tmp_path):
    model = tiny_model()
    del model.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ArtifactError) as err:
        load_engine(path, settings)
    assert "not a stylecast artifact" in one_line(err)


def test_a_file_that_is_no_model(settings, tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# notes\n\nThese are notes, not a model.\n")
    with pytest.raises(ArtifactError) as err:
        load_engine(path, settings)
    assert one_line(err) == f"{path}: not a model (expected ONNX or a TensorRT engine)"


def test_an_onnx_model_is_known_by_its_content_whatever_its_name(models, settings, tmp_path,
                                                                 photo_rgb):
    path = tmp_path / "model.bin"
    shutil.copyfile(models["dynamic"], path)
    engine = load_engine(path, settings)
    try:
        frame = crop(photo_rgb, 48, 64)
        np.testing.assert_array_equal(engine(frame), 255 - frame)
    finally:
        engine.close()


def write_engine_file(folder: Path, models, model="static", data=b"FAKE-ENGINE") -> Path:
    path = folder / f"{model}.engine"
    path.write_bytes(data)
    write_sidecar(path, read_onnx_contract(models[model]), engine_sha256="0" * 64)
    return path


def test_engine_without_tensorrt_is_a_config_error(models, settings, tmp_path):
    if tensorrt_importable():
        pytest.skip("tensorrt is installed here")
    path = write_engine_file(tmp_path, models)
    with pytest.raises(ConfigError) as err:
        load_engine(path, settings)
    message = one_line(err)
    assert "TensorRT is not installed" in message and "python3-libnvinfer" in message
    assert "--system-site-packages" in message


def test_engine_without_its_sidecar(settings, tmp_path):
    path = tmp_path / "lonely.engine"
    path.write_bytes(b"FAKE-ENGINE")
    with pytest.raises(ArtifactError, match=r"lonely\.engine\.json: engine sidecar is missing"):
        load_engine(path, settings)


def test_runtime_tensorrt_forced_without_tensorrt(models, tmp_path):
    if tensorrt_importable():
        pytest.skip("tensorrt is installed here")
    settings = EngineSettings(runtime="tensorrt", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="TensorRT is not installed"):
        load_engine(models["dynamic"], settings, frame_size=(480, 640))
    assert not list(tmp_path.rglob("*.engine"))  # refused before any build


def test_missing_cuda_python_is_a_config_error(monkeypatch):
    hide_package(monkeypatch, "cuda")
    with pytest.raises(ConfigError, match="pip install cuda-python"):
        tensorrt_engine.import_cudart()


# --- TensorRT: pure logic -----------------------------------------------------------------------


@pytest.mark.parametrize(("requested", "model", "expected"), [
    (None, "fp32", "fp16"), (None, "fp16", "fp16"), (None, "int8", "int8"),
    ("fp32", "fp32", "fp32"), ("fp16", "fp32", "fp16"), ("int8", "int8", "int8"),
])
def test_choose_precision(requested, model, expected):
    assert choose_precision(requested, model) == expected


def test_numpy_dtype():
    assert numpy_dtype("FLOAT") == np.float32
    assert numpy_dtype("HALF") == np.float16
    assert numpy_dtype("UINT8") == np.uint8
    assert numpy_dtype("DataType.INT8") == np.int8
    assert numpy_dtype(SimpleNamespace(name="INT32")) == np.int32  # a TensorRT enum value
    with pytest.raises(ArtifactError, match="BF16 has no numpy equivalent"):
        numpy_dtype("BF16")


def test_buffer_nbytes():
    assert buffer_nbytes((480, 640, 3), np.uint8) == 921_600
    assert buffer_nbytes((1, 3, 480, 640), np.float16) == 1_843_200
    assert buffer_nbytes((1, 3, 720, 1280), "float32") == 11_059_200
    with pytest.raises(ValueError, match="not fully known"):
        buffer_nbytes((1, 3, -1, -1), np.float32)


def test_frame_hw_and_profile_range():
    assert frame_hw("HWC", (480, 640, 3)) == (480, 640)
    assert frame_hw("NHWC", (1, 480, 640, 3)) == (480, 640)
    assert frame_hw("NCHW", (1, 3, 480, 640)) == (480, 640)
    shapes = [(1, 3, 64, 64), (1, 3, 480, 640), (1, 3, 720, 1280)]
    assert profile_size_range("NCHW", shapes) == ((64, 64), (720, 1280))


def test_split_io(models):
    contract = read_onnx_contract(models["static"])
    assert split_io([("image", "INPUT"), ("stylized", "OUTPUT")], contract, "m") == (
        "image", "stylized")
    with pytest.raises(ArtifactError, match=r"engine inputs \['input'\]"):
        split_io([("input", "INPUT"), ("stylized", "OUTPUT")], contract, "m")
    with pytest.raises(ArtifactError, match="do not match"):
        split_io([("image", "INPUT"), ("other", "OUTPUT")], contract, "m")


@pytest.mark.parametrize(("integrated", "can_map", "capability", "expected"), [
    (True, True, (8, 7), True),    # Orin
    (True, True, (7, 2), True),    # Xavier
    (True, True, (5, 3), False),   # Nano: pinned memory is not CPU-cached
    (True, True, (6, 2), False),   # TX2
    (True, False, (8, 7), False),
    (False, True, (8, 9), False),  # a discrete GPU
])
def test_use_zero_copy(integrated, can_map, capability, expected):
    assert use_zero_copy(integrated, can_map, capability) is expected


# --- TensorRT: engine cache from the daemon -----------------------------------------------------


def test_engine_for_a_dynamic_onnx_is_built_for_the_rounded_frame_size(models, settings):
    builder, beats = RecordingBackend(), []
    path = engine_for_onnx(models["dynamic"], settings, frame_size=(50, 70),
                           notify=beats.append, builder=builder)
    assert path.parent == settings.cache_dir and path.is_file()
    (spec,) = [spec for _, spec in builder.builds]
    assert spec.precision == "fp16"
    assert spec.input_shapes[1] == (52, 72, 3)  # opt: the frame size the model takes
    assert spec.workspace_mib == settings.workspace_mib
    assert beats  # notify is called as the build starts
    contract, _ = read_sidecar(path)
    assert contract.precision == "fp16"
    # the second start finds it in the cache
    assert engine_for_onnx(models["dynamic"], settings, frame_size=(50, 70),
                           builder=builder) == path
    assert len([spec for _, spec in builder.builds]) == 1


def test_engine_for_int8_and_static_models(models, settings):
    builder = RecordingBackend()
    engine_for_onnx(models["int8"], settings, frame_size=(480, 640), builder=builder)
    engine_for_onnx(models["static"], settings, frame_size=(480, 640), builder=builder)
    int8, static = [spec for _, spec in builder.builds]
    assert int8.precision == "int8"
    assert static.precision == "fp16" and static.input_shapes is None  # frames get resized


def test_dynamic_onnx_engine_needs_the_frame_size(models, settings):
    with pytest.raises(ConfigError, match="dynamic input size"):
        engine_for_onnx(models["dynamic"], settings, builder=RecordingBackend())


# --- TensorRT: the runtime adapter against stand-ins --------------------------------------------


@pytest.fixture
def fake_gpu(monkeypatch):
    """Install stand-ins for tensorrt and cuda-python; returns a function choosing them."""
    state = {}

    def install(*, dynamic=False, **cudart_options):
        state["cudart"] = FakeCudart(**cudart_options)
        state["trt"] = FakeTensorrt(dynamic=dynamic)
        return state["cudart"]

    monkeypatch.setattr(tensorrt_engine, "import_tensorrt", lambda: state["trt"])
    monkeypatch.setattr(tensorrt_engine, "import_cudart", lambda: state["cudart"])
    monkeypatch.setattr(tensorrt_engine, "trt_logger", lambda: None)
    return install


def test_tensorrt_engine_copies_through_pinned_and_device_buffers(models, tmp_path, fake_gpu,
                                                                  photo_rgb):
    cudart = fake_gpu()
    engine = TensorrtEngine(write_engine_file(tmp_path, models), read_onnx_contract(
        models["static"]))
    assert engine.description == ("TensorRT 10.3.0 on Fake GPU, pinned copies, static.engine "
                                  "(fp32)")
    assert engine.size_range is None
    first, second = crop(photo_rgb, *STATIC), crop(photo_rgb, *STATIC)[::-1].copy()
    out_first = engine(first)
    np.testing.assert_array_equal(out_first, 255 - first)
    assert cudart.copies == ["cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost"]
    np.testing.assert_array_equal(engine(second), 255 - second)
    np.testing.assert_array_equal(out_first, 255 - first)  # not overwritten by the next frame
    assert cudart.kinds() == ["device", "device", "pinned", "pinned"]  # allocated once
    engine.close()
    engine.close()
    assert cudart.blocks == {} and cudart.streams == 0
    with pytest.raises(StylecastError, match="closed"):
        engine(first)


def test_tensorrt_engine_zero_copy_on_jetson_orin(models, tmp_path, fake_gpu, photo_rgb):
    cudart = fake_gpu(integrated=True, capability=(8, 7))
    engine = TensorrtEngine(write_engine_file(tmp_path, models), read_onnx_contract(
        models["static"]))
    assert "zero-copy mapped memory" in engine.description
    frame = crop(photo_rgb, *STATIC)
    np.testing.assert_array_equal(engine(frame), 255 - frame)
    assert cudart.copies == []
    assert cudart.kinds() == ["mapped", "mapped"]
    engine.close()
    assert cudart.blocks == {}


def test_tensorrt_engine_copies_on_jetson_nano(models, tmp_path, fake_gpu, photo_rgb):
    cudart = fake_gpu(integrated=True, capability=(5, 3))
    engine = TensorrtEngine(write_engine_file(tmp_path, models), read_onnx_contract(
        models["static"]))
    engine(crop(photo_rgb, *STATIC))
    assert len(cudart.copies) == 2 and "pinned copies" in engine.description


def test_dynamic_tensorrt_engine_reallocates_when_the_size_changes(models, tmp_path, fake_gpu,
                                                                   photo_rgb):
    cudart = fake_gpu(dynamic=True)
    engine = TensorrtEngine(write_engine_file(tmp_path, models, "dynamic"), read_onnx_contract(
        models["dynamic"]))
    assert engine.size_range == ((16, 16), STATIC)
    for size in [(48, 64), (48, 64), (32, 40), STATIC]:
        frame = crop(photo_rgb, *size)
        np.testing.assert_array_equal(engine(frame), 255 - frame)
        assert len(cudart.blocks) == 4  # old buffers freed on every reallocation
    with pytest.raises(ValueError, match="outside the engine's profile"):
        engine(crop(photo_rgb, 80, 96))
    engine.close()
    assert cudart.blocks == {}


def test_load_engine_fits_frames_into_a_tensorrt_profile(models, tmp_path, fake_gpu, photo_rgb):
    fake_gpu(dynamic=True)
    path = write_engine_file(tmp_path, models, "dynamic")
    engine = load_engine(path, EngineSettings(cache_dir=tmp_path))
    assert isinstance(engine.engine, TensorrtEngine)
    assert engine.model_size_for((120, 160)) == STATIC  # clamped to the profile's max
    assert engine.model_size_for((50, 70)) == (52, 72)
    frame = crop(photo_rgb, 120, 160)
    output = engine(frame)
    assert output.shape == frame.shape
    assert np.abs(output.astype(int) - (255 - frame.astype(int))).mean() < 12
    engine.close()


def test_engine_from_another_tensorrt_or_gpu(models, tmp_path, fake_gpu):
    fake_gpu()
    path = write_engine_file(tmp_path, models, data=b"built elsewhere")
    with pytest.raises(ArtifactError) as err:
        load_engine(path, EngineSettings(cache_dir=tmp_path))
    assert one_line(err).endswith("rebuild it with stylecast-export engine")


def test_engine_whose_tensors_do_not_match_its_sidecar(models, tmp_path, fake_gpu):
    fake_gpu()
    path = write_engine_file(tmp_path, models)
    contract = read_onnx_contract(models["static"])
    renamed = contract.model_copy(update={"input": contract.input.model_copy(
        update={"name": "pixels"})})
    with pytest.raises(ArtifactError, match="do not match the contract's 'pixels'"):
        TensorrtEngine(path, renamed)
    float_io = contract.model_copy(update={"output": contract.output.model_copy(
        update={"dtype": "float32", "value_range": (-1, 1)})})
    with pytest.raises(ArtifactError, match="'stylized' is uint8, the contract says float32"):
        TensorrtEngine(path, float_io)


@pytest.mark.parametrize("call", ["cudaMalloc", "cudaMallocHost"])
def test_cuda_failures_name_the_call_and_leak_nothing(models, tmp_path, fake_gpu, photo_rgb,
                                                      call):
    cudart = fake_gpu(fail=call)
    engine = TensorrtEngine(write_engine_file(tmp_path, models), read_onnx_contract(
        models["static"]))
    with pytest.raises(StylecastError, match=f"CUDA {call} failed: cudaErrorMemoryAllocation"):
        engine(crop(photo_rgb, *STATIC))
    assert cudart.blocks == {}


def test_cuda_check_unpacks_results():
    cudart = FakeCudart()
    assert cuda_check(cudart, cudart._ok(), "x") is None
    assert cuda_check(cudart, cudart._ok(7), "x") == 7
    assert cuda_check(cudart, cudart._ok(7, 8), "x") == (7, 8)
    with pytest.raises(StylecastError, match="CUDA cudaFoo failed: cudaErrorMemoryAllocation"):
        cuda_check(cudart, (FakeCudart.cudaError_t.cudaErrorMemoryAllocation,), "cudaFoo")
