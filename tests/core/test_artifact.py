"""The artifact contract: round trips through ONNX metadata and sidecars, strict field checks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from stylecast.core.artifact import (
    CONTRACT_VERSION,
    Contract,
    TensorSpec,
    model_kind,
    read_contract,
    read_onnx_contract,
    read_sidecar,
    sidecar_path,
    write_onnx_metadata,
    write_sidecar,
)
from stylecast.core.errors import EX_CONFIG, ArtifactError

from support.contracts import make_contract


def save_identity_model(path, contract: Contract | None, extra_props=()) -> None:
    """A real, runnable ONNX model: uint8 HWC image in, the same image out."""
    shape = ["height", "width", 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["stylized"])], "identity",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, shape)],
        [helper.make_tensor_value_info("stylized", TensorProto.UINT8, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in extra_props:
        model.metadata_props.add(key=key, value=value)
    if contract is not None:
        write_onnx_metadata(model, contract)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def test_metadata_round_trip():
    contract = make_contract()
    assert Contract.from_metadata(contract.to_metadata()) == contract


def test_metadata_is_flat_readable_strings():
    meta = make_contract(height=None, width=None, precision="int8").to_metadata()
    assert meta["stylecast.contract_version"] == str(CONTRACT_VERSION)
    assert meta["stylecast.input.layout"] == "HWC"
    assert meta["stylecast.input.value_range"] == "0,255"
    assert meta["stylecast.height"] == "dynamic"
    assert meta["stylecast.precision"] == "int8"
    assert all(isinstance(v, str) for v in meta.values())


def test_float_io_contract_round_trips():
    spec = TensorSpec(name="x", layout="NCHW", dtype="float32", color_order="RGB",
                      value_range=(-1, 1))
    contract = make_contract(input=spec, output=spec.model_copy(update={"name": "y"}))
    assert Contract.from_metadata(contract.to_metadata()).input.value_range == (-1.0, 1.0)


def test_onnx_file_round_trip_keeps_other_metadata(tmp_path):
    path = tmp_path / "model.onnx"
    stale = make_contract(style="old").to_metadata()
    save_identity_model(path, make_contract(height=None, width=None),
                        extra_props=[("author", "me"), *stale.items()])
    contract = read_onnx_contract(path)
    assert contract == make_contract(height=None, width=None)
    assert contract.is_dynamic
    assert read_contract(path) == contract
    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert props["author"] == "me"


def test_onnx_runtime_sees_the_contract_and_runs_the_model(tmp_path, photo_rgb):
    path = tmp_path / "model.onnx"
    save_identity_model(path, make_contract())
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert Contract.from_metadata(meta) == read_onnx_contract(path)
    (out,) = session.run(None, {"image": photo_rgb})
    np.testing.assert_array_equal(out, photo_rgb)


@pytest.mark.parametrize("key", sorted(make_contract().to_metadata()))
def test_every_required_field_missing_is_named(key):
    meta = make_contract().to_metadata()
    del meta[key]
    if key == "stylecast.stylecast_version":
        return  # the writer's version defaults to the installed one; not required of the reader
    with pytest.raises(ArtifactError, match=f"'{key}' is missing"):
        Contract.from_metadata(meta, source="m.onnx")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stylecast.input.layout", "CHW"),
        ("stylecast.input.dtype", "uint16"),
        ("stylecast.input.color_order", "YUV"),
        ("stylecast.input.value_range", "0,1"),  # uint8 must be 0,255
        ("stylecast.output.value_range", "banana"),
        ("stylecast.output.name", ""),
        ("stylecast.height", "482"),  # not a multiple of 4
        ("stylecast.width", "-640"),
        ("stylecast.width", "wide"),
        ("stylecast.size_multiple", "0"),
        ("stylecast.precision", "int4"),
        ("stylecast.style", "no spaces allowed"),
        ("stylecast.preset", ""),
        ("stylecast.weights_sha256", "abc123"),
    ],
)
def test_wrong_value_is_named_with_field_and_value(key, value):
    meta = {**make_contract().to_metadata(), key: value}
    with pytest.raises(ArtifactError) as err:
        Contract.from_metadata(meta, source="m.onnx")
    message = str(err.value)
    assert message.startswith("m.onnx: ")
    assert "\n" not in message
    assert f"contract field '{key}' = {value!r}" in message


def test_value_range_must_increase():
    spec = {"name": "x", "layout": "NCHW", "dtype": "float32", "color_order": "RGB",
            "value_range": (1, -1)}
    with pytest.raises(ValueError, match=r"(?s)value_range.*low < high"):
        TensorSpec(**spec)


def test_newer_contract_version_is_refused():
    meta = {**make_contract().to_metadata(), "stylecast.contract_version": "2"}
    with pytest.raises(ArtifactError, match=r"'stylecast.contract_version' = '2' is newer"):
        Contract.from_metadata(meta, source="m.onnx")


def test_non_numeric_version_is_named():
    meta = {**make_contract().to_metadata(), "stylecast.contract_version": "one"}
    with pytest.raises(ArtifactError, match="contract_version' = 'one' is not a number"):
        Contract.from_metadata(meta)


def test_unknown_field_is_named():
    meta = {**make_contract().to_metadata(), "stylecast.input.gamma": "2.2"}
    with pytest.raises(ArtifactError, match=r"'stylecast.input.gamma' is not part of contract v1"):
        Contract.from_metadata(meta)


def test_model_without_contract_is_not_an_artifact(tmp_path):
    path = tmp_path / "plain.onnx"
    save_identity_model(path, None, extra_props=[("author", "me")])
    with pytest.raises(ArtifactError, match="not a stylecast artifact"):
        read_onnx_contract(path)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12"])
def test_garbage_file_is_refused(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match=r"bad\.onnx: not a readable ONNX model"):
        read_onnx_contract(path)


def test_truncated_model_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    save_identity_model(path, make_contract())
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ArtifactError, match=r"model\.onnx"):
        read_onnx_contract(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ArtifactError, match=r"nothere\.onnx: no such model file"):
        read_contract(tmp_path / "nothere.onnx")
    with pytest.raises(ArtifactError, match=r"nothere\.engine: no such model file"):
        read_contract(tmp_path / "nothere.engine")


def test_a_model_is_known_by_its_content(tmp_path):
    notes = tmp_path / "README.md"
    notes.write_text("# stylecast\n\nNot a model.\n")
    with pytest.raises(ArtifactError) as caught:
        read_contract(notes)
    assert str(caught.value) == f"{notes}: not a model (expected ONNX or a TensorRT engine)"
    assert model_kind(tmp_path / "a.onnx") == "onnx"  # a model's own suffix is taken at its word
    assert model_kind(tmp_path / "a.plan") == "engine"

    onnx_file = tmp_path / "style.bin"
    save_identity_model(onnx_file, make_contract())
    assert model_kind(onnx_file) == "onnx" and read_contract(onnx_file) == make_contract()

    engine = tmp_path / "style.trt"
    engine.write_bytes(b"serialized engine")
    write_sidecar(engine, make_contract(precision="fp16"))
    assert model_kind(engine) == "engine"
    assert read_contract(engine) == make_contract(precision="fp16")


def test_sidecar_round_trip(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine")
    contract = make_contract(precision="fp16")
    path = write_sidecar(engine, contract, cache_key={"trt": "10.3.0", "gpu": "Orin"})
    assert path == sidecar_path(engine) == tmp_path / "model.engine.json"
    assert read_sidecar(engine) == (contract, {"cache_key": {"trt": "10.3.0", "gpu": "Orin"}})
    assert read_contract(engine) == contract


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "engine sidecar is missing"),
        ("{not json", "unreadable engine sidecar"),
        ("[]", "has no 'contract' object"),
        (json.dumps({"contract": {"stylecast.contract_version": "1"}}), "is missing"),
    ],
)
def test_bad_sidecar_is_named(tmp_path, text, message):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine")
    if text is not None:
        sidecar_path(engine).write_text(text)
    with pytest.raises(ArtifactError, match=message):
        read_sidecar(engine)


def test_artifact_errors_exit_with_ex_config():
    assert ArtifactError.exit_code == EX_CONFIG == 78


def test_device_side_never_imports_torch():
    """Import every stylecast.daemon module in a fresh interpreter; torch must stay unloaded."""
    code = (
        "import importlib, pkgutil, sys, stylecast.daemon as d\n"
        "for m in pkgutil.walk_packages(d.__path__, 'stylecast.daemon.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'torch'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
