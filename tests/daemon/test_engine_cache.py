"""The TensorRT engine cache: keys, names, shape profiles, sidecars, rebuild rules, atomicity.

TensorRT and a GPU do not exist here. The cache logic is tested with real stylecast ONNX
artifacts (runnable in ONNX Runtime) and a *recording build backend* injected through the
`builder` parameter: dependency injection for the three calls the cache makes (TensorRT version,
GPU, build), NOT a pretend TensorRT. It returns bytes derived from what it was given, so the tests
can see exactly what the cache asked for and wrote. The builder's own TensorRT calls are tested
in tests/daemon/test_tensorrt_build.py: against the TensorRT stand-in everywhere, and for real
where TensorRT is installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from stylecast.core.artifact import (
    Contract,
    read_contract,
    read_onnx_contract,
    read_sidecar,
    sidecar_path,
)
from stylecast.core.errors import EX_CONFIG, ArtifactError, ConfigError, InputError
from stylecast.daemon.engines import engine_cache, tensorrt_build
from stylecast.daemon.engines.engine_cache import (
    EngineBuildError,
    EngineKey,
    ShapeProfile,
    engine_is_current,
    engine_path,
    ensure_engine,
    find_engine,
    plan_engine,
    profile_for,
    tensor_shape,
    timing_cache_path,
    write_engine,
)
from stylecast.export.engine_command import engine_command

from support.artifact_models import artifact_model, save_artifact
from support.build_backend import RecordingBackend
from support.contracts import make_contract


@pytest.fixture
def dynamic_onnx(tmp_path) -> Path:
    """A dynamic-size uint8 HWC fp32 artifact."""
    (tmp_path / "models").mkdir()
    return save_artifact(tmp_path / "models" / "mosaic.onnx")


def test_artifact_is_a_real_runnable_stylecast_model(dynamic_onnx, photo_rgb):
    contract = read_onnx_contract(dynamic_onnx)
    assert contract.is_dynamic and contract.input.dtype == "uint8"
    session = ort.InferenceSession(dynamic_onnx, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": photo_rgb[:96, :128]})
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8 and out.std() > 1


# --- Keys ---------------------------------------------------------------------------------------

BASE_KEY = EngineKey(onnx_sha256="a" * 64, tensorrt_version="10.3.0", gpu_name="Orin",
                     compute_capability="8.7", precision="fp16",
                     profile=ShapeProfile(min=(64, 64), opt=(480, 640), max=(480, 640)))
KEY_CHANGES = {
    "onnx_sha256": "b" * 64,
    "tensorrt_version": "8.5.2.2",
    "gpu_name": "Xavier",
    "compute_capability": "7.2",
    "precision": "int8",
    "profile": ShapeProfile(min=(64, 64), opt=(480, 640), max=(720, 1280)),
}


@pytest.mark.parametrize("field", sorted(KEY_CHANGES))
def test_key_changes_with_each_field(field):
    changed = dataclasses.replace(BASE_KEY, **{field: KEY_CHANGES[field]})
    assert changed != BASE_KEY
    assert changed.digest() != BASE_KEY.digest()


def test_static_and_dynamic_keys_differ():
    assert dataclasses.replace(BASE_KEY, profile=None).digest() != BASE_KEY.digest()


def test_key_digest_is_stable_and_round_trips_through_json():
    assert BASE_KEY.digest() == dataclasses.replace(BASE_KEY).digest()
    assert len(BASE_KEY.digest()) == 64
    data = json.loads(json.dumps(BASE_KEY.as_dict()))
    assert data == BASE_KEY.as_dict()
    assert EngineKey.from_dict(data) == BASE_KEY
    static = dataclasses.replace(BASE_KEY, profile=None)
    assert EngineKey.from_dict(static.as_dict()) == static


def test_key_from_a_broken_dict_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="not an engine cache key"):
        EngineKey.from_dict({"onnx_sha256": "a" * 64})


def test_key_hashes_the_onnx_file_bytes(tmp_path):
    backend = RecordingBackend()
    first = save_artifact(tmp_path / "m.onnx", seed=0)
    key = plan_engine(first, precision="fp16", size=(96, 128), builder=backend).key
    assert key.onnx_sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    copy = tmp_path / "copy" / first.name
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    assert plan_engine(copy, precision="fp16", size=(96, 128), builder=backend).key == key
    save_artifact(first, seed=0, style="other")  # same weights, other metadata: other bytes
    assert plan_engine(first, precision="fp16", size=(96, 128), builder=backend).key != key


def test_engine_path_keeps_stem_and_precision_readable(tmp_path):
    path = engine_path(tmp_path / "cache", "/models/mosaic.onnx", BASE_KEY)
    assert path == tmp_path / "cache" / f"mosaic.fp16.{BASE_KEY.digest()[:12]}.engine"
    other = engine_path(tmp_path / "cache", "/models/mosaic.onnx",
                        dataclasses.replace(BASE_KEY, tensorrt_version="10.3.0.26"))
    assert other != path and other.name.startswith("mosaic.fp16.")


def test_timing_cache_is_per_tensorrt_version_and_architecture(tmp_path):
    assert timing_cache_path(tmp_path, BASE_KEY) == tmp_path / "tensorrt-10.3.0-sm87.timing-cache"


# --- Shape profiles -----------------------------------------------------------------------------


def contract_for(size=None, multiple=4) -> Contract:
    return make_contract(height=size[0] if size else None, width=size[1] if size else None,
                         size_multiple=multiple)


def test_static_model_has_no_profile_and_refuses_other_sizes():
    static = contract_for((480, 640))
    assert profile_for(static, None) is None
    assert profile_for(static, (480, 640)) is None
    with pytest.raises(ConfigError) as err:
        profile_for(static, (720, 1280), source="m.onnx")
    assert str(err.value) == ("m.onnx is exported for 640x480 only, not 1280x720: use --size "
                              "480x640 (height x width) or export a dynamic model "
                              "(stylecast-export onnx --dynamic)")
    with pytest.raises(ConfigError, match="--max-size applies to dynamic models"):
        profile_for(static, None, (720, 1280))


def test_dynamic_profile_is_tuned_for_the_requested_size():
    profile = profile_for(contract_for(), (480, 640))
    assert profile == ShapeProfile(min=(64, 64), opt=(480, 640), max=(480, 640))
    wide = profile_for(contract_for(), (480, 640), (720, 1280))
    assert wide == ShapeProfile(min=(64, 64), opt=(480, 640), max=(720, 1280))
    assert str(wide) == "min 64x64, opt 640x480, max 1280x720"  # width x height
    assert ShapeProfile.from_dict(json.loads(json.dumps(wide.as_dict()))) == wide


@pytest.mark.parametrize("multiple", [4, 8, 16])
def test_dynamic_profiles_are_multiples_of_size_multiple(multiple):
    contract = contract_for(multiple=multiple)
    for height in range(multiple, 200, multiple * 3):
        for width in (multiple, 5 * multiple, 720 // multiple * multiple):
            profile = profile_for(contract, (height, width), (height * 2, width + multiple))
            for size in (profile.min, profile.opt, profile.max):
                assert size[0] % multiple == 0 and size[1] % multiple == 0
            assert profile.min[0] <= profile.opt[0] <= profile.max[0]
            assert profile.min[1] <= profile.opt[1] <= profile.max[1]
            assert profile.min[0] >= multiple and profile.min[1] >= multiple


@pytest.mark.parametrize(
    ("size", "max_size", "message"),
    [
        (None, None, r"dynamic input size: give the frame size .*--size HxW, height x width"),
        ((482, 640), None, r"size 482x640 \(height x width\): .*multiples of 4 for m.onnx"),
        ((480, 640), (722, 1280), r"--max-size 722x1280 \(height x width\): .*multiples of 4"),
        ((480, 640), (240, 1280),
         r"--max-size 240x1280 \(height x width\) is smaller than the size 480x640 "),
    ],
)
def test_dynamic_profile_errors_name_the_sizes(size, max_size, message):
    with pytest.raises(ConfigError, match=message):
        profile_for(contract_for(), size, max_size, source="m.onnx")


def test_tensor_shapes_follow_the_contract_layout():
    assert tensor_shape("HWC", (48, 64)) == (48, 64, 3)
    assert tensor_shape("NHWC", (48, 64)) == (1, 48, 64, 3)
    assert tensor_shape("NCHW", (48, 64)) == (1, 3, 48, 64)


# --- find_engine --------------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path, dynamic_onnx):
    """An engine built into a cache by ensure_engine, with its key and backend."""
    backend = RecordingBackend()
    cache = tmp_path / "cache"
    path = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                         builder=backend)
    key = plan_engine(dynamic_onnx, precision="fp16", size=(96, 128), builder=backend).key
    return path, key, cache, backend


def test_find_engine_returns_a_matching_engine(built, dynamic_onnx):
    path, key, cache, _ = built
    assert find_engine(cache, dynamic_onnx, key) == path == engine_path(cache, dynamic_onnx, key)


def test_find_engine_ignores_an_engine_without_sidecar(built, dynamic_onnx):
    path, key, cache, _ = built
    sidecar_path(path).unlink()
    assert find_engine(cache, dynamic_onnx, key) is None


def test_find_engine_ignores_a_missing_engine(built, dynamic_onnx):
    path, key, cache, _ = built
    path.unlink()
    assert find_engine(cache, dynamic_onnx, key) is None


@pytest.mark.parametrize("field", sorted(KEY_CHANGES))
def test_find_engine_ignores_a_sidecar_recording_another_key(built, dynamic_onnx, field):
    path, key, cache, _ = built
    document = json.loads(sidecar_path(path).read_text())
    document["cache_key"] = dataclasses.replace(key, **{field: KEY_CHANGES[field]}).as_dict()
    sidecar_path(path).write_text(json.dumps(document))
    assert find_engine(cache, dynamic_onnx, key) is None


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"cache_key": {}}', "contract"])
def test_find_engine_ignores_a_corrupted_sidecar(built, dynamic_onnx, damage, caplog):
    path, key, cache, _ = built
    if damage == "contract":  # valid JSON, right key, but a contract field the reader refuses
        document = json.loads(sidecar_path(path).read_text())
        document["contract"]["stylecast.input.dtype"] = "uint16"
        damage = json.dumps(document)
    sidecar_path(path).write_text(damage)
    with caplog.at_level(logging.WARNING):
        assert find_engine(cache, dynamic_onnx, key) is None
    assert "not using this engine" in caplog.text


def test_find_engine_ignores_an_engine_whose_bytes_changed(built, dynamic_onnx):
    path, key, cache, _ = built
    path.write_bytes(path.read_bytes() + b"x")
    assert find_engine(cache, dynamic_onnx, key) is None


# --- ensure_engine ------------------------------------------------------------------------------


def test_ensure_engine_builds_once_then_reuses_the_cache(tmp_path, dynamic_onnx):
    backend = RecordingBackend()
    cache = tmp_path / "cache"
    first = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                          builder=backend)
    again = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                          builder=backend)
    assert first == again and len(backend.builds) == 1
    onnx_bytes, _ = backend.builds[0]
    assert onnx_bytes == dynamic_onnx.read_bytes()
    assert first.read_bytes() == b"engine:" + hashlib.sha256(onnx_bytes).digest() + b"fp16"
    assert sorted(os.listdir(cache)) == [first.name, first.name + ".json"]


def test_ensure_engine_passes_the_build_spec(tmp_path, dynamic_onnx):
    backend = RecordingBackend()
    ensure_engine(dynamic_onnx, cache_dir=tmp_path / "cache", precision="fp16", size=(96, 128),
                  max_size=(192, 256), workspace_mib=256, builder=backend)
    spec = backend.builds[0][1]
    assert spec.precision == "fp16" and spec.input_name == "image" and spec.workspace_mib == 256
    assert spec.input_shapes == ((64, 64, 3), (96, 128, 3), (192, 256, 3))
    assert spec.timing_cache == tmp_path / "cache" / "tensorrt-10.3.0-sm87.timing-cache"
    assert spec.source == str(dynamic_onnx)


def test_float_io_and_static_models_get_their_own_shapes(tmp_path):
    backend = RecordingBackend()
    nchw = save_artifact(tmp_path / "float.onnx", float_io=True)
    ensure_engine(nchw, cache_dir=tmp_path / "c", precision="fp32", size=(48, 64),
                  timing_cache=tmp_path / "mine.cache", builder=backend)
    assert backend.builds[0][1].input_shapes == ((1, 3, 48, 64), (1, 3, 48, 64), (1, 3, 48, 64))
    assert backend.builds[0][1].timing_cache == tmp_path / "mine.cache"
    static = save_artifact(tmp_path / "static.onnx", size=(96, 128))
    path = ensure_engine(static, cache_dir=tmp_path / "c", precision="fp16", builder=backend)
    assert backend.builds[1][1].input_shapes is None
    assert read_sidecar(path)[1]["cache_key"]["profile"] is None


def test_sidecar_carries_the_engine_contract_and_key(built, dynamic_onnx):
    path, key, _, _ = built
    contract, extra = read_sidecar(path)
    onnx_contract = read_onnx_contract(dynamic_onnx)
    assert contract.precision == "fp16" and onnx_contract.precision == "fp32"
    assert contract == onnx_contract.model_copy(update={"precision": "fp16"})
    assert read_contract(path) == contract
    assert EngineKey.from_dict(extra["cache_key"]) == key
    assert extra["engine_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert extra["onnx"] == str(dynamic_onnx)
    assert datetime.fromisoformat(extra["built_at"]).tzinfo is not None


def test_a_reexported_onnx_gets_a_new_engine(built, dynamic_onnx):
    path, _, cache, backend = built
    save_artifact(dynamic_onnx, seed=1)  # new weights, same file name
    rebuilt = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                            builder=backend)
    assert rebuilt != path and len(backend.builds) == 2
    assert backend.builds[1][0] == dynamic_onnx.read_bytes()


@pytest.mark.parametrize(
    "change",
    [{"version": "10.3.0.30"}, {"gpu": ("Orin", "8.6")}, {"gpu": ("Xavier", "8.7")}],
    ids=["tensorrt-upgrade", "other-capability", "other-gpu"],
)
def test_another_tensorrt_or_gpu_gets_a_new_engine(built, dynamic_onnx, change):
    path, _, cache, _ = built
    backend = RecordingBackend(**change)
    rebuilt = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                            builder=backend)
    assert rebuilt != path and len(backend.builds) == 1


@pytest.mark.parametrize("kwargs", [{"size": (192, 256)}, {"max_size": (192, 256)}],
                         ids=["other-size", "other-max-size"])
def test_another_profile_gets_a_new_engine(built, dynamic_onnx, kwargs):
    path, _, cache, backend = built
    rebuilt = ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16",
                            **{"size": (96, 128), **kwargs}, builder=backend)
    assert rebuilt != path and len(backend.builds) == 2


def test_a_failing_build_leaves_no_engine_and_no_temporary_files(tmp_path, dynamic_onnx):
    cache = tmp_path / "cache"
    backend = RecordingBackend(error=EngineBuildError("out of memory"))
    with pytest.raises(EngineBuildError, match="out of memory"):
        ensure_engine(dynamic_onnx, cache_dir=cache, precision="fp16", size=(96, 128),
                      builder=backend)
    assert not cache.exists() or os.listdir(cache) == []


def test_a_failing_rebuild_keeps_the_previous_engine_intact(tmp_path, dynamic_onnx):
    output = tmp_path / "out" / "mosaic.engine"
    plan = plan_engine(dynamic_onnx, precision="fp16", size=(96, 128), builder=RecordingBackend())
    write_engine(plan, output)
    before = (output.read_bytes(), sidecar_path(output).read_bytes())
    failing = RecordingBackend(error=RuntimeError("killed mid-build"))
    plan = plan_engine(dynamic_onnx, precision="fp16", size=(96, 128), builder=failing)
    with pytest.raises(RuntimeError):
        write_engine(plan, output)
    assert (output.read_bytes(), sidecar_path(output).read_bytes()) == before
    assert sorted(os.listdir(output.parent)) == ["mosaic.engine", "mosaic.engine.json"]


def test_an_empty_engine_is_an_error_not_a_file(tmp_path, dynamic_onnx):
    backend = RecordingBackend()
    backend.build = lambda onnx_bytes, spec, progress: b""
    with pytest.raises(EngineBuildError, match="returned no engine"):
        ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128),
                      builder=backend)
    assert os.listdir(tmp_path / "c") == []


def test_an_unusable_cache_folder_is_refused_before_building(tmp_path, dynamic_onnx):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    backend = RecordingBackend()
    with pytest.raises(InputError, match="cannot create its folder") as err:
        ensure_engine(dynamic_onnx, cache_dir=blocker / "cache", precision="fp16",
                      size=(96, 128), builder=backend)
    assert err.value.exit_code == EX_CONFIG and backend.builds == []


def test_onnx_changed_after_planning_is_refused(tmp_path, dynamic_onnx):
    plan = plan_engine(dynamic_onnx, precision="fp16", size=(96, 128), builder=RecordingBackend())
    save_artifact(dynamic_onnx, seed=2)
    with pytest.raises(ArtifactError, match="changed while"):
        write_engine(plan, tmp_path / "x.engine")
    assert not (tmp_path / "x.engine").exists()


# --- Precision rules ----------------------------------------------------------------------------


def test_int8_from_an_fp32_onnx_is_refused_in_one_line(tmp_path, dynamic_onnx):
    backend = RecordingBackend()
    with pytest.raises(ArtifactError) as err:
        ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="int8", size=(96, 128),
                      builder=backend)
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == EX_CONFIG
    assert "quantize it first: stylecast-export quantize" in message
    assert "--precision int8 --target tensorrt" in message
    assert backend.builds == []


def test_int8_onnx_builds_as_int8_only(tmp_path):
    int8 = save_artifact(tmp_path / "q.onnx", precision="int8")
    backend = RecordingBackend()
    path = ensure_engine(int8, cache_dir=tmp_path / "c", precision="int8", size=(96, 128),
                         builder=backend)
    assert backend.builds[0][1].precision == "int8" and ".int8." in path.name
    assert read_sidecar(path)[0].precision == "int8"
    with pytest.raises(ArtifactError, match="has precision int8 and builds only as int8"):
        ensure_engine(int8, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128),
                      builder=backend)


def test_fp16_builds_from_fp32_and_fp16_onnx(tmp_path):
    backend = RecordingBackend()
    for precision in ("fp32", "fp16"):
        model = save_artifact(tmp_path / f"{precision}.onnx", precision=precision)
        path = ensure_engine(model, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128),
                             builder=backend)
        assert read_sidecar(path)[0].precision == "fp16"
    assert len(backend.builds) == 2


def test_a_non_stylecast_onnx_is_refused(tmp_path):
    model = artifact_model()
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "plain.onnx")
    with pytest.raises(ArtifactError, match="not a stylecast artifact"):
        ensure_engine(tmp_path / "plain.onnx", cache_dir=tmp_path / "c", precision="fp16",
                      size=(96, 128), builder=RecordingBackend())


# --- systemd notify and progress ----------------------------------------------------------------


def test_notify_is_called_while_a_slow_build_runs(tmp_path, dynamic_onnx, monkeypatch):
    monkeypatch.setattr(engine_cache, "NOTIFY_INTERVAL_S", 0.05)
    calls: list[float] = []
    ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128),
                  notify=calls.append, builder=RecordingBackend(delay_s=0.4))
    count = len(calls)
    assert count >= 4, calls
    assert calls[0] < 0.05 and calls == sorted(calls) and calls[-1] < 1.0
    time.sleep(0.15)
    assert len(calls) == count  # the heartbeat stops with the build


def test_a_failing_notify_does_not_stop_the_build(tmp_path, dynamic_onnx, monkeypatch, caplog):
    monkeypatch.setattr(engine_cache, "NOTIFY_INTERVAL_S", 0.05)
    calls = []

    def notify(elapsed):
        calls.append(elapsed)
        raise OSError("NOTIFY_SOCKET is gone")

    with caplog.at_level(logging.ERROR):
        path = ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="fp16",
                             size=(96, 128), notify=notify, builder=RecordingBackend(delay_s=0.2))
    assert path.is_file() and len(calls) >= 2
    assert caplog.text.count("notify callback failed") == 1


def test_progress_reaches_the_backend_and_logs(tmp_path, dynamic_onnx, caplog):
    with caplog.at_level(logging.INFO, logger="stylecast.daemon.engines.engine_cache"):
        ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128),
                      builder=RecordingBackend())
    assert "TensorRT: Building engine (1 steps)" in caplog.text


# --- The real backend without TensorRT ----------------------------------------------------------


def test_missing_tensorrt_is_one_clear_line(tmp_path, dynamic_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(ConfigError) as err:
        tensorrt_build.tensorrt_version()
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == EX_CONFIG
    assert message.startswith("TensorRT is not installed: on a Jetson it comes with JetPack "
                              "(python3-libnvinfer); use a venv with --system-site-packages")
    with pytest.raises(ConfigError, match="TensorRT is not installed"):
        ensure_engine(dynamic_onnx, cache_dir=tmp_path / "c", precision="fp16", size=(96, 128))


def test_engine_cache_imports_neither_torch_nor_tensorrt():
    code = ("import sys, stylecast.daemon.engines.engine_cache, "
            "stylecast.daemon.engines.tensorrt_build, stylecast.export.engine_command; "
            "bad = [m for m in ('torch', 'tensorrt', 'stylecast.training') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- stylecast-export engine --------------------------------------------------------------------


def engine_args(model, output, **overrides) -> argparse.Namespace:
    values = dict(model=model, output=output, precision="fp16", size=(96, 128), max_size=None,
                  workspace=1024, timing_cache=None, force=False)
    return argparse.Namespace(**{**values, **overrides})


def test_engine_command_writes_exactly_the_output_and_its_sidecar(tmp_path, dynamic_onnx,
                                                                  capsys):
    backend = RecordingBackend()
    output = tmp_path / "out" / "camera.engine"
    assert engine_command(engine_args(dynamic_onnx, output), builder=backend) == 0
    assert sorted(os.listdir(output.parent)) == ["camera.engine", "camera.engine.json"]
    key = plan_engine(dynamic_onnx, precision="fp16", size=(96, 128), builder=backend).key
    assert engine_is_current(output, key)
    printed = capsys.readouterr().out
    assert str(output) in printed and key.digest()[:12] in printed and "TensorRT 10.3.0" in printed
    assert backend.builds[0][1].timing_cache == output.parent / "tensorrt-10.3.0-sm87.timing-cache"


def test_engine_command_skips_an_up_to_date_engine_unless_forced(tmp_path, dynamic_onnx, capsys):
    backend = RecordingBackend()
    output = tmp_path / "camera.engine"
    engine_command(engine_args(dynamic_onnx, output), builder=backend)
    engine_command(engine_args(dynamic_onnx, output), builder=backend)
    assert len(backend.builds) == 1 and "up to date" in capsys.readouterr().out
    engine_command(engine_args(dynamic_onnx, output, force=True), builder=backend)
    engine_command(engine_args(dynamic_onnx, output, max_size=(192, 256)), builder=backend)
    assert len(backend.builds) == 3
    assert read_sidecar(output)[1]["cache_key"]["profile"]["max"] == [192, 256]
