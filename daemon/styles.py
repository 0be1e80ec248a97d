"""The configured styles by name, their engines, and which one is live.

Engines load on first use (or all at start with `preload`). Switching loads the new engine first
and then swaps one reference, so the stream keeps flowing in the old style until the new one is
ready. Loaded engines are kept by (model file, engine settings) and survive a config reload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from stylecast.core.artifact import read_contract
from stylecast.core.errors import ArtifactError
from stylecast.daemon.engines import Engine, load_engine
from stylecast.daemon.engines.settings import EngineSettings

log = logging.getLogger(__name__)

EngineLoader = Callable[..., Engine]
Notify = Callable[[float], None]


class LoadedEngines:
    """Loaded engines by (model path, settings), shared across config reloads."""

    def __init__(self, loader: EngineLoader = load_engine) -> None:
        self._loader = loader
        self._engines: dict[tuple[Path, EngineSettings], Engine] = {}
        self._lock = threading.Lock()

    def get(self, model: Path, settings: EngineSettings, frame_size: tuple[int, int] | None,
            notify: Notify | None) -> Engine:
        key = (Path(model), settings)
        with self._lock:
            engine = self._engines.get(key)
        if engine is None:
            engine = self._loader(model, settings, frame_size=frame_size, notify=notify)
            with self._lock:
                self._engines[key] = engine
        return engine

    def has(self, model: Path, settings: EngineSettings) -> bool:
        with self._lock:
            return (Path(model), settings) in self._engines

    def keep_only(self, keys: set[tuple[Path, EngineSettings]]) -> None:
        """Close engines no longer configured (after a reload)."""
        with self._lock:
            stale = [k for k in self._engines if k not in keys]
            closing = [self._engines.pop(k) for k in stale]
        for engine in closing:
            engine.close()

    def close(self) -> None:
        self.keep_only(set())


class StyleBook:
    """Named styles for one config; `live` is read by the inference stage every frame."""

    def __init__(self, models: dict[str, Path], active: str, settings: EngineSettings,
                 engines: LoadedEngines) -> None:
        self.models = dict(models)
        self.settings = settings
        self._engines = engines
        self._switch = threading.Lock()
        self.active_name = active
        # (name, engine), swapped as one reference so the inference stage never sees a mix.
        self.live: tuple[str, Engine] | None = None
        self.frame_size: tuple[int, int] | None = None
        self.notify: Notify | None = None

    def check_artifacts(self) -> None:
        """Read every style's contract now, so a bad artifact fails at start (exit 78)."""
        for name, path in self.models.items():
            if not Path(path).exists():
                raise ArtifactError(f"{path}: model file of style '{name}' not found")
            read_contract(path)

    def start(self, frame_size: tuple[int, int], preload: bool, notify: Notify | None) -> None:
        """Load the active style's engine (and every other one with `preload`)."""
        self.frame_size, self.notify = frame_size, notify
        self.live = (self.active_name, self.engine_for(self.active_name))
        if preload:
            for name in self.models:
                self.engine_for(name)

    def engine_for(self, name: str) -> Engine:
        engine = self._engines.get(self.models[name], self.settings, self.frame_size, self.notify)
        if engine.contract.style != name:
            log.debug("style '%s' runs a model trained as '%s'", name, engine.contract.style)
        return engine

    def set_style(self, name: str) -> Engine:
        """Make `name` live. KeyError if unknown; the engine's load error if it cannot load."""
        if name not in self.models:
            raise KeyError(name)
        with self._switch:
            engine = self.engine_for(name)
            self.live, self.active_name = (name, engine), name
        log.info("style is now '%s' (%s)", name, engine.description)
        return engine

    def engine_keys(self) -> set[tuple[Path, EngineSettings]]:
        return {(Path(path), self.settings) for path in self.models.values()}

    def loaded(self) -> list[str]:
        return [name for name, path in self.models.items()
                if self._engines.has(Path(path), self.settings)]
