"""TensorRT engine cache: build an engine once per (model, TensorRT, GPU, precision, shapes).

An engine only runs on the TensorRT version and the GPU it was built with, and only for the
input shapes of its optimization profile. So every engine is filed under a key:

    ONNX file SHA-256 + TensorRT version + GPU name + compute capability + precision + profile

folded into one digest. The cache holds `<onnx stem>.<precision>.<digest[:12]>.engine` and its
sidecar `<engine>.json` (the artifact contract with the engine's precision, the full key, the
engine's own SHA-256, when and from what it was built). An engine is used only if its sidecar's
key equals the key computed now and its bytes match the recorded hash, so a re-exported model, a
JetPack upgrade, another Jetson, another precision or another frame size gets a fresh build and a
stale engine is never used. Engine and sidecar are written atomically, engine first: a build that
dies half way leaves nothing that looks usable.

This module is pure Python and runs on the device: it never imports torch or tensorrt. TensorRT
is reached only through a build backend, `stylecast.daemon.engines.tensorrt_build` by default (tests
inject their own). The daemon calls `ensure_engine`; `stylecast-export engine` calls
`plan_engine` and `write_engine` to build into a path of the user's choosing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stylecast.core.artifact import (
    Contract,
    read_onnx_contract,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from stylecast.core.atomic import atomic_path, check_writable
from stylecast.core.digests import file_sha256
from stylecast.core.errors import ArtifactError, ConfigError
from stylecast.core.layouts import LAYOUTS
from stylecast.core.sizes import size_flag_text, size_text
from stylecast.daemon.engines.build_spec import (
    BuildBackend,
    BuildSpec,
    EngineBuildError,
    Notify,
    Progress,
    Shape,
)
from stylecast.daemon.engines.precision import Precision, check_precision

log = logging.getLogger(__name__)

Size = tuple[int, int]  # (height, width)

# Bump when the way engines are built changes in a way that makes old engines wrong or worse
# (e.g. other builder flags): every cached engine is then rebuilt.
KEY_SCHEME = 1
DEFAULT_WORKSPACE_MIB = 1024
# The smallest side a dynamic engine's profile accepts (clamped to the frame size). TensorRT
# tunes kernels for the `opt` shape; `min` only has to admit smaller frames, such as previews.
MIN_PROFILE_SIDE = 64
# How often `notify` is called while a build runs (a systemd EXTEND_TIMEOUT_USEC heartbeat).
NOTIFY_INTERVAL_S = 10.0

# --- Shapes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeProfile:
    """The (height, width) range a dynamic engine accepts; kernels are tuned for `opt`."""

    min: Size
    opt: Size
    max: Size

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShapeProfile:
        return cls(**{k: _size(data[k]) for k in ("min", "opt", "max")})

    def __str__(self) -> str:
        return (f"min {size_text(*self.min)}, opt {size_text(*self.opt)}, "
                f"max {size_text(*self.max)}")


def profile_for(contract: Contract, requested: Size | None, max_size: Size | None = None, *,
                source: str = "model") -> ShapeProfile | None:
    """The optimization profile to build `contract`'s model for; None for a static model.

    A static model runs at its own size only: `requested`, if given, must equal it. A dynamic
    model needs the frame size to build for (`requested`): the engine is tuned for it (`opt`),
    accepts up to `max_size` (default: the requested size itself, the fastest and leanest engine)
    and down to MIN_PROFILE_SIDE per side. Every size is a multiple of the contract's
    size_multiple; a size that is not is refused, never rounded behind the user's back.
    """
    if not contract.is_dynamic:
        static = (contract.height, contract.width)
        if requested is not None and tuple(requested) != static:
            raise ConfigError(
                f"{source} is exported for {size_text(*static)} only, not "
                f"{size_text(*requested)}: use --size {size_flag_text(*static)} or export a "
                "dynamic model (stylecast-export onnx --dynamic)")
        if max_size is not None:
            raise ConfigError(f"{source} is exported for {size_text(*static)} only: --max-size "
                              "applies to dynamic models")
        return None
    if requested is None:
        raise ConfigError(f"{source} has a dynamic input size: give the frame size to build the "
                          "engine for (--size HxW, height x width)")
    multiple = contract.size_multiple
    opt = _checked_size(requested, multiple, "size", source)
    top = opt if max_size is None else _checked_size(max_size, multiple, "--max-size", source)
    if top[0] < opt[0] or top[1] < opt[1]:
        raise ConfigError(f"--max-size {size_flag_text(*top)} is smaller than the size "
                          f"{size_flag_text(*opt)}")
    low = tuple(max(multiple, min(MIN_PROFILE_SIDE, side) // multiple * multiple) for side in opt)
    return ShapeProfile(min=low, opt=opt, max=top)


def tensor_shape(layout: str, size: Size) -> Shape:
    """The full input tensor shape for a frame size, in the contract's layout."""
    return LAYOUTS[layout].shape(*size)


def _checked_size(size: Size, multiple: int, what: str, source: str) -> Size:
    height, width = size
    if height < 1 or width < 1 or height % multiple or width % multiple:
        raise ConfigError(f"{what} {size_flag_text(*size)}: height and width must be positive "
                          f"multiples of {multiple} for {source}")
    return (height, width)


def _size(value: Any) -> Size:
    height, width = value
    return (int(height), int(width))


# --- The key ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Equal keys: the engine may be reused; else rebuild."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7" (Orin), "7.2" (Xavier), "5.3" (Nano)
    precision: Precision
    profile: ShapeProfile | None  # None: a static model (its shape is part of the ONNX bytes)
    scheme: int = KEY_SCHEME

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, and exactly what a JSON round trip gives back (lists, not tuples)."""
        return {
            "scheme": self.scheme,
            "onnx_sha256": self.onnx_sha256,
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "precision": self.precision,
            "profile": None if self.profile is None else self.profile.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineKey:
        try:
            profile = data["profile"]
            return cls(
                onnx_sha256=str(data["onnx_sha256"]),
                tensorrt_version=str(data["tensorrt_version"]),
                gpu_name=str(data["gpu_name"]),
                compute_capability=str(data["compute_capability"]),
                precision=data["precision"],
                profile=None if profile is None else ShapeProfile.from_dict(profile),
                scheme=int(data["scheme"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"not an engine cache key ({type(err).__name__}: {err})") from None

    def digest(self) -> str:
        """A stable SHA-256 (hex) of the whole key, for file names."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        shapes = "static shape" if self.profile is None else f"profile {self.profile}"
        return (f"{self.precision}, TensorRT {self.tensorrt_version}, {self.gpu_name} "
                f"(sm {self.compute_capability}), {shapes}, onnx sha256 {self.onnx_sha256[:12]}, "
                f"key {self.digest()[:12]}")


def engine_path(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey) -> Path:
    """`<cache_dir>/<onnx stem>.<precision>.<digest[:12]>.engine`."""
    return Path(cache_dir) / f"{Path(onnx_path).stem}.{key.precision}.{key.digest()[:12]}.engine"


def timing_cache_path(folder: str | Path, key: EngineKey) -> Path:
    """The default persistent timing cache: one per TensorRT version and GPU architecture,
    shared by every model built in `folder` (TensorRT rejects a cache from another device)."""
    sm = key.compute_capability.replace(".", "")
    return Path(folder) / f"tensorrt-{key.tensorrt_version}-sm{sm}.timing-cache"


# --- Finding a usable engine --------------------------------------------------------------------


def engine_is_current(path: str | Path, key: EngineKey) -> bool:
    """True if `path` and its sidecar exist, the sidecar's contract is valid, its key equals
    `key` and the engine's bytes are the ones the sidecar recorded."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        _, extra = read_sidecar(path)
    except ArtifactError as err:
        log.warning("%s: not using this engine: %s", path, err)
        return False
    if extra.get("cache_key") != key.as_dict():
        log.info("%s: built for another key; rebuilding", path)
        return False
    if extra.get("engine_sha256") != file_sha256(path):
        log.warning("%s: engine bytes differ from what its sidecar recorded; rebuilding", path)
        return False
    return True


def find_engine(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey) -> Path | None:
    """The cached engine for `key`, or None when there is none that can be trusted."""
    path = engine_path(cache_dir, onnx_path, key)
    return path if engine_is_current(path, key) else None


# --- Planning and building ----------------------------------------------------------------------


@dataclass(frozen=True)
class EnginePlan:
    onnx_path: Path
    contract: Contract
    key: EngineKey
    backend: BuildBackend


@dataclass(frozen=True)
class BuiltEngine:
    path: Path
    key: EngineKey
    size_bytes: int
    seconds: float


def default_backend() -> BuildBackend:
    from stylecast.daemon.engines import tensorrt_build  # imports tensorrt only when it is used

    return tensorrt_build


def plan_engine(onnx_path: str | Path, *, precision: str, size: Size | None = None,
                max_size: Size | None = None, builder: BuildBackend | None = None) -> EnginePlan:
    """Read and check the artifact and compute its engine key (asks the backend for the
    TensorRT version and GPU; builds nothing)."""
    onnx_path = Path(onnx_path)
    contract = read_onnx_contract(onnx_path)
    check_precision(contract, precision, str(onnx_path))
    profile = profile_for(contract, size, max_size, source=str(onnx_path))
    backend = builder if builder is not None else default_backend()
    version = backend.tensorrt_version()  # first: "TensorRT is not installed" says the most
    gpu_name, capability = backend.gpu()
    key = EngineKey(onnx_sha256=file_sha256(onnx_path), tensorrt_version=version,
                    gpu_name=gpu_name, compute_capability=capability, precision=precision,
                    profile=profile)
    return EnginePlan(onnx_path, contract, key, backend)


def write_engine(plan: EnginePlan, output: str | Path, *,
                 workspace_mib: int = DEFAULT_WORKSPACE_MIB, timing_cache: Path | None = None,
                 notify: Notify | None = None, progress: Progress | None = None) -> BuiltEngine:
    """Build `plan` and write the engine to `output` and its sidecar beside it, atomically."""
    output = Path(output)
    check_writable(output)  # before minutes of building, not after
    onnx_bytes = plan.onnx_path.read_bytes()
    if hashlib.sha256(onnx_bytes).hexdigest() != plan.key.onnx_sha256:
        raise ArtifactError(f"{plan.onnx_path} changed while the engine was being planned; "
                            "run again")
    spec = _build_spec(plan, workspace_mib, timing_cache)
    log.info("building %s from %s (%s); this can take minutes", output, plan.onnx_path,
             plan.key.describe())
    started = time.monotonic()
    with _heartbeat(notify):
        engine = plan.backend.build(onnx_bytes, spec, progress)
    seconds = time.monotonic() - started
    if not engine:
        raise EngineBuildError(f"{plan.onnx_path}: the TensorRT build returned no engine")
    # Drop the old sidecar first: until the new one lands, the engine has none and is not used.
    sidecar_path(output).unlink(missing_ok=True)
    with atomic_path(output, size_hint=len(engine)) as tmp:
        tmp.write_bytes(engine)
    write_sidecar(
        output, plan.contract.model_copy(update={"precision": plan.key.precision}),
        cache_key=plan.key.as_dict(), engine_sha256=hashlib.sha256(engine).hexdigest(),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(seconds, 1), onnx=str(plan.onnx_path),
    )
    log.info("built %s (%.1f MB) in %.0f s", output, len(engine) / 1e6, seconds)
    return BuiltEngine(output, plan.key, len(engine), seconds)


def ensure_engine(onnx_path: str | Path, *, cache_dir: str | Path, precision: str,
                  size: Size | None = None, max_size: Size | None = None,
                  workspace_mib: int = DEFAULT_WORKSPACE_MIB, timing_cache: Path | None = None,
                  notify: Notify | None = None, progress: Progress | None = None,
                  builder: BuildBackend | None = None) -> Path:
    """The engine for `onnx_path` on this machine: from `cache_dir`, or built into it.

    size / max_size: the frame size (H, W) to build a dynamic model for, and the largest it must
    accept (see `profile_for`). timing_cache: default `timing_cache_path(cache_dir, key)`.

    notify(seconds_elapsed) is called when a build starts and then every NOTIFY_INTERVAL_S seconds
    from a helper thread until it ends (the daemon answers with systemd's EXTEND_TIMEOUT_USEC,
    e.g. three intervals); it must be quick and thread-safe, and its exceptions are logged, not
    raised. progress(phase, done, total), called from TensorRT's threads on TensorRT >= 9.1,
    may return False to cancel the build.
    """
    plan = plan_engine(onnx_path, precision=precision, size=size, max_size=max_size,
                       builder=builder)
    found = find_engine(cache_dir, onnx_path, plan.key)
    if found is not None:
        log.info("using cached engine %s", found)
        return found
    path = engine_path(cache_dir, onnx_path, plan.key)
    cache = timing_cache if timing_cache is not None else timing_cache_path(cache_dir, plan.key)
    write_engine(plan, path, workspace_mib=workspace_mib, timing_cache=cache, notify=notify,
                 progress=progress if progress is not None else ProgressLog())
    return path


def _build_spec(plan: EnginePlan, workspace_mib: int, timing_cache: Path | None) -> BuildSpec:
    profile = plan.key.profile
    layout = plan.contract.input.layout
    shapes = None if profile is None else tuple(
        tensor_shape(layout, size) for size in (profile.min, profile.opt, profile.max))
    return BuildSpec(precision=plan.key.precision, input_name=plan.contract.input.name,
                     input_shapes=shapes, workspace_mib=workspace_mib, timing_cache=timing_cache,
                     source=str(plan.onnx_path))


@contextmanager
def _heartbeat(notify: Notify | None) -> Iterator[None]:
    """Call notify(elapsed) now and every NOTIFY_INTERVAL_S until the block ends."""
    if notify is None:
        yield
        return
    started = time.monotonic()
    stop = threading.Event()
    interval = NOTIFY_INTERVAL_S

    def beat() -> None:
        failed = False
        while True:
            try:
                notify(time.monotonic() - started)
            except Exception:
                if not failed:  # say it once, keep beating: the build matters more
                    log.exception("engine build: the notify callback failed")
                failed = True
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="engine-build-notify", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class ProgressLog:
    """Reports TensorRT's build phases through logging: each phase as it starts, and the step
    count at most every `interval_s` seconds. Thread-safe (TensorRT calls from its threads)."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self._interval_s = interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            now = time.monotonic()
            if done == 0:
                log.info("TensorRT: %s (%d steps)", phase, total)
            elif now - self._last >= self._interval_s:
                log.info("TensorRT: %s %d/%d", phase, done, total)
            else:
                return
            self._last = now
