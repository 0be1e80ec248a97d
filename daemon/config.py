"""stylecastd's configuration: embedded defaults, then one TOML file, then command-line flags.

Every option is documented in configs/stylecast.toml. Validation is strict: an unknown key, a
wrong type or a bad value is one line naming the file, the key and the value (exit 78).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stylecast.core.artifact import ENGINE_SUFFIXES
from stylecast.core.errors import ConfigError
from stylecast.core.validation import NAME_PATTERN, describe
from stylecast.daemon.engines.settings import EngineSettings
from stylecast.daemon.sources import check_source_uri
from stylecast.stream.endpoints import default_control_endpoint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

DEFAULT_CONFIG = Path("/etc/stylecast/stylecast.toml")
BUNDLED_MODELS = Path(__file__).resolve().parent / "models"  # INT8; FP32 twins in models/fp32/
# the bundled style that looked best on the test card and on photos (docs/gallery.png)
DEFAULT_BUNDLED_STYLE = "cafe-terrace"
DEFAULT_PUBLISH = "tcp://127.0.0.1:5555"
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(Section):
    uri: str = "test://"
    stall_timeout_s: float = Field(default=5.0, gt=0)
    reopen_backoff_s: float = Field(default=0.5, gt=0)
    reopen_backoff_max_s: float = Field(default=10.0, gt=0)
    # Exit 1 (systemd restarts the service) when no frame came for this long; 0 = keep retrying.
    give_up_after_s: float = Field(default=0.0, ge=0)

    @field_validator("uri")
    @classmethod
    def _known_uri(cls, uri: str) -> str:
        check_source_uri(uri)
        return uri


class StyleTuning(Section):
    """[styles.NAME]: how much of a style shows, and how calm it is. Both change live too
    (`stylecast-ctl set-strength` / `set-smoothing`), from the next frame on."""

    # 1 = the model's picture, 0 = the camera's frame, between: a blend of the two.
    strength: float = Field(default=1.0, ge=0, le=1, strict=True, allow_inf_nan=False)
    # Running average of the stylized frames, against texture shimmer on still scenes: 0 = off,
    # 0.5 = each new frame weighs half; 1 holds the stylized picture still. Started afresh on
    # a style switch or a frame size change.
    smoothing: float = Field(default=0.0, ge=0, le=1, strict=True, allow_inf_nan=False)


STYLE_KEYS = ("active", "preload", "models")


def _a_table(value: Any) -> Any:
    """A [styles] key that is not one of its own must be a [styles.NAME] table."""
    if not isinstance(value, dict):
        raise ValueError(f"is not a known key (the [styles] keys are {', '.join(STYLE_KEYS)}, "
                         "and a [styles.NAME] table tunes the style NAME)")
    return value


class StyleSettings(Section):
    # Any other key is a [styles.NAME] table: that style's StyleTuning.
    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Annotated[StyleTuning, BeforeValidator(_a_table)]] = Field(
        init=False)

    # The style live at start; default: the first one in `models`.
    active: str | None = Field(default=None, pattern=NAME_PATTERN)
    # Load every style at start (instant switches, more memory) or each on its first use.
    preload: bool = False
    # name -> model file (.onnx, or a TensorRT .engine with its .json sidecar). Relative paths are
    # relative to the config file. Empty = the styles bundled with stylecast.
    models: dict[str, Path] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _names(cls, models: dict[str, Path]) -> dict[str, Path]:
        for name in models:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"style name {name!r} must match {NAME_PATTERN}")
        return models

    def tunings(self) -> dict[str, StyleTuning]:
        """The [styles.NAME] tables, by style name."""
        return dict(self.model_extra or {})


class PublishSettings(Section):
    endpoints: list[str] = Field(default_factory=lambda: [DEFAULT_PUBLISH], min_length=1)
    # Payload of the frame topics: tightly packed pixels or JPEG (smaller; costs an encode).
    format: Literal["rgb24", "bgr24", "jpeg"] = "rgb24"
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    # Also publish the camera's frames on topic "raw".
    raw: bool = False
    stats_interval_s: float = Field(default=1.0, gt=0)
    # Messages queued per subscriber before newer ones are dropped: small, so nobody lags.
    sndhwm: int = Field(default=2, ge=1)
    # The `stream` field of every header: which camera/daemon a frame came from.
    stream: str = Field(default_factory=lambda: socket.gethostname() or "stylecast",
                        pattern=NAME_PATTERN)

    @field_validator("endpoints")
    @classmethod
    def _zmq_endpoints(cls, endpoints: list[str]) -> list[str]:
        twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} listed twice")
        return [_check_endpoint(e) for e in endpoints]


class ControlSettings(Section):
    endpoint: str = Field(default_factory=default_control_endpoint)
    max_message_bytes: int = Field(default=65536, ge=256)

    @field_validator("endpoint")
    @classmethod
    def _zmq_endpoint(cls, endpoint: str) -> str:
        return _check_endpoint(endpoint)


class FaultSettings(Section):
    # Consecutive frames the engine may fail on (each is skipped) before the daemon exits 1.
    max_engine_errors: int = Field(default=30, ge=1)


class SecuritySettings(Section):
    # The daemon's CURVE key pair: the NAME.key_secret file `stylecast-ctl keygen` writes (mode
    # 0600). Setting it encrypts the publish socket, and the control socket when it is tcp.
    curve_secret_key: Path | None = None
    # Folder of the client public keys (*.key files) let in; required with curve_secret_key.
    authorized_keys: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> SecuritySettings:
        if self.curve_secret_key is not None and self.authorized_keys is None:
            raise ValueError("curve_secret_key is set but authorized_keys is not: CURVE needs "
                             "the folder of client public keys (*.key) allowed to connect")
        if self.authorized_keys is not None and self.curve_secret_key is None:
            raise ValueError("authorized_keys is set but curve_secret_key is not: client keys "
                             "are only checked when CURVE is on")
        return self


class MetricsSettings(Section):
    # HOST:PORT of the HTTP server for Prometheus (/metrics) and health checks (/healthz), e.g.
    # "127.0.0.1:9108"; "" = off. It has no authentication: keep it on loopback unless the
    # network is trusted. Port 0: one the system picks (logged).
    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        if listen:
            parse_listen(listen)
        return listen

    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None when metrics are off."""
        return parse_listen(self.listen) if self.listen else None


HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def parse_listen(listen: str) -> tuple[str, int]:
    """'host:port' or '[v6 address]:port' -> (host, port); ValueError saying what is wrong."""
    host, colon, port_text = listen.rpartition(":")
    if not colon or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError("expected HOST:PORT with a port from 0 to 65535, e.g. "
                         "'127.0.0.1:9108' ('' turns metrics off)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ip(host, version=6):
            raise ValueError(f"{host!r} is not an IPv6 address")
    elif not (_is_ip(host, version=4) or HOSTNAME.match(host)):
        raise ValueError(f"{host!r} is not an IPv4 address or host name (an IPv6 address "
                         "goes in brackets: '[::1]:9108')")
    return host, int(port_text)


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class DaemonConfig(Section):
    source: SourceSettings = Field(default_factory=SourceSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    styles: StyleSettings = Field(default_factory=StyleSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _cross_references(self) -> DaemonConfig:
        """Keys that name another key's entry or must agree with it, checked once every section
        is valid, so that a mistake stops the start rather than a running pipeline."""
        found = [problem(self) for problem in CROSS_CHECKS]
        if any(found):
            raise ValueError("; ".join(filter(None, found)))
        return self

    def style_models(self) -> dict[str, Path]:
        """The configured styles, or the bundled ones when none are configured."""
        return dict(self.styles.models) or bundled_styles()

    def style_tunings(self) -> dict[str, StyleTuning]:
        """Every style's strength and smoothing at start: its [styles.NAME] table or the
        defaults."""
        tables = self.styles.tunings()
        return {name: tables.get(name, StyleTuning()) for name in self.style_models()}

    def active_style(self) -> str:
        models = self.style_models()
        if self.styles.active:
            return self.styles.active
        if not self.styles.models and DEFAULT_BUNDLED_STYLE in models:
            return DEFAULT_BUNDLED_STYLE
        return next(iter(models))


def _unknown_active_style(config: DaemonConfig) -> str | None:
    active, names = config.styles.active, list(config.style_models())
    if active is None or active in names:
        return None
    close = difflib.get_close_matches(active, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    which = "configured" if config.styles.models else "bundled"
    return (f"key 'styles.active' = {active!r} is not a style{hint}; the {which} styles are "
            f"{', '.join(names)}")


def _tables_of_unknown_styles(config: DaemonConfig) -> str | None:
    names = list(config.style_models())
    unknown = [name for name in config.styles.tunings() if name not in names]
    if not unknown:
        return None
    close = difflib.get_close_matches(unknown[0], names, n=1)
    hint = f" (did you mean [styles.{close[0]}]?)" if close else ""
    which = "configured" if config.styles.models else "bundled"
    return (f"table [styles.{unknown[0]}] tunes no style{hint}; the {which} styles are "
            f"{', '.join(names)}")


def _control_among_publish(config: DaemonConfig) -> str | None:
    endpoint = config.control.endpoint
    if endpoint not in config.publish.endpoints:
        return None
    return (f"key 'control.endpoint' = {endpoint!r} is also in publish.endpoints: the control "
            "and publish sockets need endpoints of their own")


def _engine_file_without_tensorrt(config: DaemonConfig) -> str | None:
    runtime = config.engine.runtime
    if runtime not in ("onnxruntime", "openvino"):
        return None
    engines = [name for name, path in config.styles.models.items()
               if path.suffix.lower() in ENGINE_SUFFIXES]
    if not engines:
        return None
    return (f"key 'engine.runtime' = {runtime!r} cannot run the TensorRT engine of style "
            f"'{engines[0]}'; use 'tensorrt' or 'auto', or give the style its .onnx model")


def _backoff_above_max(config: DaemonConfig) -> str | None:
    source = config.source
    if source.reopen_backoff_s <= source.reopen_backoff_max_s:
        return None
    return (f"key 'source.reopen_backoff_s' = {source.reopen_backoff_s:g} is above "
            f"source.reopen_backoff_max_s = {source.reopen_backoff_max_s:g}")


CROSS_CHECKS = (_unknown_active_style, _tables_of_unknown_styles, _control_among_publish,
                _engine_file_without_tensorrt, _backoff_above_max)


def _check_endpoint(endpoint: str) -> str:
    if not endpoint.startswith(ENDPOINT_SCHEMES) or endpoint.endswith("://"):
        raise ValueError(f"not a ZeroMQ endpoint (expected {' or '.join(ENDPOINT_SCHEMES)}...)")
    return endpoint


def bundled_styles() -> dict[str, Path]:
    """The styles that ship inside the package, by file stem; an error naming the folder if none."""
    found = sorted(BUNDLED_MODELS.glob("*.onnx")) if BUNDLED_MODELS.is_dir() else []
    if not found:
        raise ConfigError(
            f"no style is configured and no bundled style was found in {BUNDLED_MODELS} "
            "(a broken install?): pass --model PATH or set [styles.models]")
    return {path.stem: path for path in found}


# --- Loading ------------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config ({err})") from None


def resolve_config_path(explicit: Path | None) -> Path | None:
    """--config if given (it must exist), else the system config if there is one, else None."""
    if explicit is not None:
        return explicit
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> DaemonConfig:
    """Defaults <- the TOML file at `path` (if any) <- `overrides` (dotted keys from flags)."""
    data = read_toml(path) if path is not None else {}
    if path is not None:
        _resolve_relative_paths(data, path.parent)
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    if "styles.models" in (overrides or {}):  # --model: the file's styles are not in play
        _drop_style_tables(data, keep=set(overrides["styles.models"]))
    where = f"{path}: " if path is not None else ""
    try:
        return DaemonConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(where + describe(err)) from None


def flag_overrides(*, source: str | None = None, model: str | None = None,
                   publish: list[str] | None = None, control: str | None = None,
                   metrics: str | None = None, log_level: str | None = None) -> dict[str, Any]:
    """Command-line flags as dotted config keys. --model replaces the configured styles."""
    overrides: dict[str, Any] = {}
    if source is not None:
        overrides["source.uri"] = source
    if model is not None:
        path = Path(model).expanduser().absolute()
        overrides["styles.models"] = {_style_name(path): str(path)}
        overrides["styles.active"] = None
    if publish:
        overrides["publish.endpoints"] = list(publish)
    if control is not None:
        overrides["control.endpoint"] = control
    if metrics is not None:
        overrides["metrics.listen"] = metrics
    if log_level is not None:
        overrides["log.level"] = log_level
    return overrides


def _style_name(path: Path) -> str:
    """A style name for --model: the file's stem, made to fit NAME_PATTERN."""
    name = re.sub(r"[^A-Za-z0-9_.+-]", "-", path.stem).lstrip("._+-")[:64]
    return name or "model"


def _resolve_relative_paths(data: dict[str, Any], base: Path) -> None:
    """Make the file paths in the TOML data absolute, relative to the config file's folder."""
    models = _table(data, "styles", "models")
    for name, value in models.items():
        models[name] = _resolved(value, base)
    security = _table(data, "security")
    for key in ("curve_secret_key", "authorized_keys"):
        if key in security:
            security[key] = _resolved(security[key], base)


def _drop_style_tables(data: dict[str, Any], keep: set[str]) -> None:
    """Remove the [styles.NAME] tables of styles other than `keep`."""
    styles = _table(data, "styles")
    for key in [k for k, v in styles.items() if isinstance(v, dict) and k not in STYLE_KEYS]:
        if key not in keep:
            del styles[key]


def _table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The nested TOML table at `keys`; an empty dict when it is missing or not a table."""
    for key in keys:
        data = data.get(key)
        if not isinstance(data, dict):
            return {}
    return data


def _resolved(value: Any, base: Path) -> Any:
    """A path string made absolute against `base` (after ~ expansion); other values as they are
    (validation reports them)."""
    if not isinstance(value, str):
        return value
    return str((base / os.path.expanduser(value)).absolute())


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value
