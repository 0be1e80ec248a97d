"""The artifact contract: everything the device needs to know to feed an exported model.

Desktop and device share no code at run time; they share the artifact. An exported ONNX model
carries its contract in `metadata_props` as flat `stylecast.*` string entries (readable in any
ONNX viewer); a TensorRT engine carries the same entries in a sidecar JSON file beside it.

    stylecast.contract_version   1
    stylecast.input.name         image          (and .layout .dtype .color_order .value_range)
    stylecast.output.name        stylized       (the same five fields)
    stylecast.height             480 | dynamic
    stylecast.width              640 | dynamic
    stylecast.size_multiple      4
    stylecast.style              mosaic
    stylecast.preset             nano
    stylecast.precision          fp32 | fp16 | int8
    stylecast.weights_sha256     64 hex digits
    stylecast.stylecast_version  0.1.0

The reader validates every field strictly and names the bad one; a contract version newer than
this code understands is refused rather than guessed at. This module must never import torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from stylecast.core.atomic import atomic_write_text
from stylecast.core.errors import ArtifactError
from stylecast.core.layouts import LAYOUTS, LayoutName
from stylecast.core.validation import NAME_PATTERN, describe

CONTRACT_VERSION = 1
PREFIX = "stylecast."
VERSION_KEY = f"{PREFIX}contract_version"
DYNAMIC = "dynamic"

def _parse_range(value: Any) -> Any:
    """Accept "low,high" (the metadata form) as well as a pair."""
    if isinstance(value, str):
        parts = value.split(",")
        if len(parts) != 2:
            raise ValueError("must be two numbers 'low,high'")
        return tuple(part.strip() for part in parts)
    return value


def _format_range(value: tuple[float, float]) -> str:
    return ",".join(f"{v:g}" for v in value)


def _parse_size(value: Any) -> Any:
    return None if value == DYNAMIC else value


ValueRange = Annotated[
    tuple[float, float], BeforeValidator(_parse_range), PlainSerializer(_format_range)
]
Size = Annotated[
    Annotated[int, Field(gt=0)] | None,
    BeforeValidator(_parse_size),
    PlainSerializer(lambda v: DYNAMIC if v is None else str(v)),
]


class TensorSpec(BaseModel):
    """How one model input or output tensor is laid out and scaled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    layout: LayoutName
    dtype: Literal["uint8", "float16", "float32"]
    color_order: Literal["RGB", "BGR"]
    value_range: ValueRange

    @field_validator("value_range")
    @classmethod
    def _range_fits_dtype(cls, value: tuple[float, float], info: ValidationInfo):
        low, high = value
        if low >= high:
            raise ValueError("must have low < high")
        if info.data.get("dtype") == "uint8" and (low, high) != (0, 255):
            raise ValueError("must be 0,255 for a uint8 tensor")
        return value


class Contract(BaseModel):
    """The versioned description an artifact carries of how to feed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract_version: int = Field(default=CONTRACT_VERSION, ge=1, le=CONTRACT_VERSION)
    input: TensorSpec
    output: TensorSpec
    size_multiple: int = Field(ge=1)
    height: Size
    width: Size
    style: str = Field(pattern=NAME_PATTERN)
    preset: str = Field(pattern=NAME_PATTERN)
    precision: Literal["fp32", "fp16", "int8"]
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    stylecast_version: str = Field(default_factory=lambda: installed_version(), min_length=1)

    @field_validator("height", "width")
    @classmethod
    def _size_fits_multiple(cls, size: int | None, info: ValidationInfo) -> int | None:
        multiple = info.data.get("size_multiple")
        if size is not None and multiple and size % multiple:
            raise ValueError(f"must be a multiple of size_multiple {multiple}")
        return size

    @property
    def is_dynamic(self) -> bool:
        return self.height is None or self.width is None

    def to_metadata(self) -> dict[str, str]:
        """The flat `stylecast.*` string entries stored in ONNX metadata_props."""
        return _flatten(self.model_dump(mode="json"), PREFIX)

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str = "artifact") -> Contract:
        """Read and validate a contract; raise ArtifactError naming `source` and the bad field."""
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ArtifactError(
                f"{source}: not a stylecast artifact (no '{PREFIX}*' metadata); "
                "export it with stylecast-export"
            )
        _check_version(ours, source)
        try:
            return cls.model_validate(_unflatten(ours))
        except ValidationError as err:
            message = describe(err, noun="contract field", prefix=PREFIX,
                               unknown=f"is not part of contract v{CONTRACT_VERSION}")
            raise ArtifactError(f"{source}: {message}") from None


def installed_version() -> str:
    try:
        return metadata.version("stylecast")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _check_version(fields: Mapping[str, str], source: str) -> None:
    raw = fields.get("contract_version")
    if raw is None:
        raise ArtifactError(f"{source}: contract field '{VERSION_KEY}' is missing")
    if not re.fullmatch(r"[0-9]+", str(raw)):
        raise ArtifactError(f"{source}: contract field '{VERSION_KEY}' = {raw!r} is not a number")
    if int(raw) > CONTRACT_VERSION:
        raise ArtifactError(
            f"{source}: contract field '{VERSION_KEY}' = {raw!r} is newer than this stylecast "
            f"understands (up to {CONTRACT_VERSION}); upgrade stylecast on this machine"
        )


def _flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # "input" given both as a value and as a parent
                child = node[part] = {}
            node = child
        node[leaf] = value
    return tree


# --- ONNX models ------------------------------------------------------------------------------


def write_onnx_metadata(model: Any, contract: Contract) -> None:
    """Replace the `stylecast.*` entries of an onnx.ModelProto with `contract` (in memory)."""
    kept = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in [*kept, *contract.to_metadata().items()]:
        model.metadata_props.add(key=key, value=value)


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, without loading external weight files."""
    return {p.key: p.value for p in load_onnx_model(path).metadata_props}


def load_onnx_model(path: str | Path) -> Any:
    """The onnx.ModelProto of an ONNX file (no external weight files); ArtifactError if it
    cannot be read."""
    path = Path(path)
    try:
        import onnx
    except ImportError:
        raise ArtifactError(
            f"{path}: reading ONNX artifacts needs the 'onnx' package "
            "(pip install 'stylecast[daemon]')"
        ) from None
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError, RuntimeWarning or ValueError
        raise ArtifactError(f"{path}: not a readable ONNX model ({err})") from None
    if not model.graph.node:
        raise ArtifactError(f"{path}: not a readable ONNX model (it has no graph)")
    return model


def read_onnx_contract(path: str | Path, *, check_graph: bool = False) -> Contract:
    """The contract an ONNX file carries; with check_graph, also that the graph's input and
    output are the tensors it describes (name, element type, rank, 3 channels)."""
    model = load_onnx_model(path)
    props = {p.key: p.value for p in model.metadata_props}
    contract = Contract.from_metadata(props, source=str(path))
    if check_graph:
        check_graph_io(model, contract, str(path))
    return contract


# ONNX TensorProto element types of the contract's dtypes, and the rank of each layout.
ONNX_ELEMENT_TYPES = {"uint8": 2, "float16": 10, "float32": 1}
def check_graph_io(model: Any, contract: Contract, source: str) -> None:
    """Refuse a graph whose input or output is not what its contract says (ArtifactError naming
    the tensor and the contract field): such a model would fail on every frame instead."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if [value.name for value in inputs] != [contract.input.name]:
        raise ArtifactError(
            f"{source}: graph inputs {[value.name for value in inputs]} do not match contract "
            f"field '{PREFIX}input.name' = '{contract.input.name}' (one input expected)")
    _check_tensor(source, "input", inputs[0], contract.input)
    outputs = {value.name: value for value in model.graph.output}
    if contract.output.name not in outputs:
        raise ArtifactError(
            f"{source}: graph outputs {list(outputs)} do not include contract field "
            f"'{PREFIX}output.name' = '{contract.output.name}'")
    _check_tensor(source, "output", outputs[contract.output.name], contract.output)


def _check_tensor(source: str, kind: str, value: Any, spec: TensorSpec) -> None:
    import onnx

    tensor = value.type.tensor_type
    field = f"{PREFIX}{kind}"
    if tensor.elem_type != ONNX_ELEMENT_TYPES[spec.dtype]:
        found = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        raise ArtifactError(f"{source}: graph {kind} '{value.name}' is {found}, but contract "
                            f"field '{field}.dtype' = '{spec.dtype}'")
    if not tensor.HasField("shape"):
        return  # rank unknown to the graph: ONNX Runtime checks it per frame
    dims = [dim.dim_value or dim.dim_param or "?" for dim in tensor.shape.dim]
    layout = LAYOUTS[spec.layout]
    rank = layout.rank
    if len(dims) != rank:
        raise ArtifactError(f"{source}: graph {kind} '{value.name}' has rank {len(dims)} "
                            f"{dims}, but contract field '{field}.layout' = '{spec.layout}' "
                            f"needs rank {rank}")
    channels = dims[layout.channel_axis]
    if isinstance(channels, int) and channels != 3:
        raise ArtifactError(f"{source}: graph {kind} '{value.name}' {dims} has {channels} "
                            f"channels where contract field '{field}.layout' = '{spec.layout}' "
                            "puts 3 (RGB)")


# --- Engines: the contract in a sidecar JSON ----------------------------------------------------

ENGINE_SUFFIXES = (".engine", ".plan")  # TensorRT's serialized engines ("plans")


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def write_sidecar(engine_path: str | Path, contract: Contract, **extra: Any) -> Path:
    """Write `<engine>.json` atomically: the contract entries plus extra keys (e.g. a cache key)."""
    document = {"contract": contract.to_metadata(), **extra}
    path = sidecar_path(engine_path)
    atomic_write_text(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(engine_path: str | Path) -> tuple[Contract, dict[str, Any]]:
    """Read `<engine>.json`: the validated contract and the sidecar's other keys."""
    path = sidecar_path(engine_path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: engine sidecar is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: unreadable engine sidecar ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("contract"), dict):
        raise ArtifactError(f"{path}: engine sidecar has no 'contract' object")
    props = document.pop("contract")
    contract = Contract.from_metadata({k: str(v) for k, v in props.items()}, source=str(path))
    return contract, document


def read_contract(path: str | Path) -> Contract:
    """The contract of any artifact: an ONNX model's metadata (checked against its graph's input
    and output), or an engine's sidecar (checked against the engine when it loads)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such model file")
    if model_kind(path) == "onnx":
        return read_onnx_contract(path, check_graph=True)
    return read_sidecar(path)[0]


def model_kind(path: str | Path) -> Literal["onnx", "engine"]:
    """What the model file at `path` is. A .onnx, .engine or .plan name is taken at its word (the
    content is checked when it is read, with errors of its own); any other file by its content:
    an engine has its sidecar beside it, an ONNX file parses as a ModelProto with a graph."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in ENGINE_SUFFIXES or sidecar_path(path).is_file():
        return "engine"
    if _parses_as_onnx(path):
        return "onnx"
    raise ArtifactError(f"{path}: not a model (expected ONNX or a TensorRT engine)")


def _parses_as_onnx(path: Path) -> bool:
    try:
        load_onnx_model(path)
    except ArtifactError:
        return False
    return True
