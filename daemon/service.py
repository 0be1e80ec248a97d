"""The daemon's supervisor: builds the pipeline from the config and runs it under systemd.

The main thread owns the control socket and everything systemd sees:

- READY=1 once the first stylized frame is out (or again after a reload), STATUS= about once a
  second with fps and style;
- WATCHDOG=1 at half of WATCHDOG_USEC, and only while frames are actually flowing (while paused:
  while frames are captured), so a hung pipeline gets the service restarted;
- EXTEND_TIMEOUT_USEC= while a TensorRT engine builds on first start;
- SIGTERM/SIGINT: STOPPING=1 and a clean exit within 2 s; SIGHUP: RELOADING=1, the config is read
  again, and a broken one is logged and ignored (the old one keeps running).

A `set_style` whose engine has to be built (minutes for TensorRT) runs the build in a helper
thread; the main thread keeps pinging the watchdog (frames keep flowing in the old style), keeps
STATUS= current and still stops at once on SIGTERM (the reply then says the switch was abandoned).

With [security] set, one CURVE authenticator serves the context. A reload reads the authorized
client keys folder again (added keys are let in, removed keys are refused from their next
connection on; clients already connected stay connected), and a new server key pair rebinds the
sockets it secures.
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import zmq

from stylecast.core.artifact import installed_version
from stylecast.core.errors import EX_OK, ConfigError, StylecastError
from stylecast.core.extras import needs
from stylecast.daemon.config import DaemonConfig, MetricsSettings, load_config
from stylecast.daemon.control import ControlError, ControlServer
from stylecast.daemon.frame_flow import FrameFlow
from stylecast.daemon.notify import SystemdNotifier
from stylecast.daemon.pipeline import Pipeline, PipelineFailure
from stylecast.daemon.publisher import Publisher
from stylecast.daemon.sources import open_source
from stylecast.daemon.styles import EngineLoader, LoadedEngines, StyleBook
from stylecast.stream.security import CurveServer, load_server_keys, warn_if_exposed

if TYPE_CHECKING:
    from stylecast.daemon.metrics import DaemonMetrics
    from stylecast.daemon.metrics_http import MetricsServer

log = logging.getLogger(__name__)
T = TypeVar("T")

CONTROL_POLL_MS = 100
STATUS_INTERVAL_S = 1.0
# Seconds on top of the stall timeout before a source read that never returns is fatal.
HUNG_READ_GRACE_S = 10.0
# Building a TensorRT engine takes minutes: ask systemd for this much more start time at a time.
EXTEND_TIMEOUT_S = 60.0
# The port the start-up hint suggests for `stylecast-sub --http` (the README's), or the next free.
HINT_PORT = 8080
HINT_PORT_TRIES = 10
REBIND_ATTEMPTS = 20  # zmq unbinds asynchronously: a reload may have to wait for its own port


class PipelineEnd(enum.Enum):
    """How one run of the pipeline ended."""

    STOPPED = "stopped"    # asked to stop, or the source ended: the daemon exits 0
    RELOADED = "reloaded"  # SIGHUP brought a new config: run again with it


class Daemon:
    """One stylecastd process: a config, a ZeroMQ context, and one pipeline at a time."""

    def __init__(self, config_path: Path | None, overrides: dict[str, Any] | None = None, *,
                 notifier: SystemdNotifier | None = None,
                 engine_loader: EngineLoader | None = None) -> None:
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.config = load_config(config_path, self.overrides)
        self.notifier = notifier or SystemdNotifier()
        self.engines = LoadedEngines(engine_loader) if engine_loader else LoadedEngines()
        self.context: zmq.Context | None = None
        self.publisher: Publisher | None = None
        self.control: ControlServer | None = None
        self.pipeline: Pipeline | None = None
        self.style_book: StyleBook | None = None
        self.control_settings = None
        self.curve: CurveServer | None = None
        self.heartbeat: Heartbeat | None = None
        self.metrics: DaemonMetrics | None = None  # made when [metrics] listen is first set
        self.metrics_server: MetricsServer | None = None
        # Set by the signal handlers. Two flags, so that taking a reload request can never wipe
        # out a stop request that arrives at the same moment.
        self._requested: str | None = None  # "stop"
        self._reload_requested = False
        self._switching: str | None = None  # what a running set_style is doing, for STATUS=

    # --- running -----------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; the exit code. Errors propagate as StylecastError."""
        self._install_signal_handlers()
        self.context = zmq.Context()
        try:
            while self._run_pipeline() is PipelineEnd.RELOADED:
                pass
            return EX_OK
        finally:
            self._shutdown()

    def _run_pipeline(self) -> PipelineEnd:
        config = self.config
        styles = StyleBook(config.style_models(), config.active_style(), config.engine,
                           self.engines)
        styles.check_artifacts()
        self._bind_sockets(config)
        self.engines.keep_only(styles.engine_keys())
        source = open_source(config.source.uri)
        latency_observer = self.metrics.latency.observe if self.metrics else None
        pipeline = Pipeline(config, source, styles, self.publisher,
                            latency_observer=latency_observer)
        pipeline.engine_notify = self._engine_building
        self.style_book, self.pipeline = styles, pipeline
        pipeline.start()
        try:
            return self._supervise(pipeline)
        finally:
            pipeline.stop()

    def _supervise(self, pipeline: Pipeline) -> PipelineEnd:
        self.heartbeat = Heartbeat(self.notifier, pipeline, lambda: self._switching,
                                   on_ready=self._announce)
        while True:
            self.control.serve_once(CONTROL_POLL_MS)
            if self._requested == "stop":
                self.notifier.stopping()
                log.info("stopping")
                return PipelineEnd.STOPPED
            if self._reload_requested:
                self._reload_requested = False
                if self._reload():
                    return PipelineEnd.RELOADED
            if pipeline.failure is not None:
                raise pipeline.failure
            if pipeline.finished.is_set():
                log.info("source %s ended; all frames published", pipeline.health.uri)
                self.notifier.stopping()
                return PipelineEnd.STOPPED
            self._check_hung_read(pipeline)
            self.heartbeat.beat()

    def _announce(self) -> None:
        """Where to watch: said once the first frame is out, so never for a source that does
        not open (and the hint's port is one that is free now)."""
        log.info("publishing on %s%s; control on %s; style '%s'",
                 ", ".join(self.publisher.endpoints), " (CURVE)" if self.curve else "",
                 self.control.endpoint, self.style_book.active_name)
        port = free_local_port()
        if port is not None:
            log.info("watch it: stylecast-sub %s --http 127.0.0.1:%d, then open "
                     "http://127.0.0.1:%d/", self.publisher.endpoints[0], port, port)

    def _check_hung_read(self, pipeline: Pipeline) -> None:
        since = pipeline.health.reading_since
        limit = self.config.source.stall_timeout_s + HUNG_READ_GRACE_S
        if since is not None and time.monotonic() - since > limit:
            raise PipelineFailure(f"source {pipeline.health.uri}: a read has not returned for "
                                  f"{limit:g} s; exiting so the service is restarted")

    def _engine_building(self, elapsed_s: float) -> None:
        """Called from the engine build's heartbeat thread."""
        if self._requested == "stop":  # an extension now would only delay systemd's stop
            return
        building = f"building the TensorRT engine ({elapsed_s:.0f} s so far)"
        if self.pipeline is not None and self.pipeline.first_published.is_set():
            self._switching = building  # a set_style build: STATUS= carries it, no extension
            return
        self.notifier.extend_timeout(EXTEND_TIMEOUT_S)
        self.notifier.status(building)

    # --- sockets -----------------------------------------------------------------------------

    def _bind_sockets(self, config: DaemonConfig) -> None:
        """Bind publisher and control; after a reload keep the ones whose settings (CURVE keys
        included) are unchanged."""
        self._secure(config)
        curve = self.curve
        if self.publisher is None or self.publisher.settings != config.publish:
            if self.publisher is not None:
                self.publisher.close()
                self.publisher = None
            self.publisher = _retry_bind(lambda: Publisher(self.context, config.publish,
                                                           curve=curve))
            if curve is None:
                warn_if_exposed(self.publisher.endpoints, "publish endpoint")
        control = config.control
        if self.control is None or self.control_settings != control:
            if self.control is not None:
                self.control.close()
                self.control = None
            # ipc is guarded by file permissions; CURVE there would lock out stylecast-ctl.
            control_curve = curve if control.endpoint.startswith("tcp://") else None
            self.control = _retry_bind(lambda: ControlServer(
                self.context, control.endpoint, self,
                max_message_bytes=control.max_message_bytes, curve=control_curve))
            self.control_settings = control
            if control_curve is None:
                warn_if_exposed([self.control.endpoint], "control endpoint")
        self._serve_metrics(config.metrics)

    def _serve_metrics(self, settings: MetricsSettings) -> None:
        """Start, keep, move or stop the HTTP metrics endpoint; its figures outlive a move."""
        if self.metrics_server is not None and self.metrics_server.listen == settings.listen:
            return
        self._close_metrics_server()
        address = settings.address()
        if address is None:
            return
        _require_prometheus_client()
        from stylecast.daemon.metrics import DaemonMetrics
        from stylecast.daemon.metrics_http import MetricsServer

        if self.metrics is None:
            self.metrics = DaemonMetrics(lambda: self.pipeline)
        self.metrics_server = MetricsServer(settings.listen, address, self.metrics.registry,
                                            self.health)
        log.info("metrics on %s/metrics, health on %s/healthz", self.metrics_server.url,
                 self.metrics_server.url)

    def _close_metrics_server(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None

    def _secure(self, config: DaemonConfig) -> None:
        """Start, keep or stop CURVE. New server keys: the sockets they secured are closed first,
        so none is ever left without its authenticator; same keys: re-read the client keys."""
        security = config.security
        keys = load_server_keys(security.curve_secret_key, security.authorized_keys)
        if self.curve is not None and keys == self.curve.keys:
            self.curve.authorize(security.authorized_keys)
            return
        if self.curve is None and keys is None:
            return
        self._close_sockets()
        if self.curve is not None:
            self.curve.close()
            self.curve = None
        if keys is not None:
            self.curve = CurveServer(self.context, keys, security.authorized_keys)

    def _close_sockets(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None

    def _shutdown(self) -> None:
        self._close_metrics_server()
        self._close_sockets()
        if self.curve is not None:
            self.curve.close()
        self.engines.close()
        if self.context is not None:
            self.context.destroy(linger=0)

    # --- signals and reload ------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            self._requested = "stop"

        def reload(signum: int, _frame: Any) -> None:
            self._reload_requested = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _reload(self) -> bool:
        """Read the config again; True to restart the pipeline with it, False to keep the old."""
        self.notifier.reloading()
        try:
            config = load_config(self.config_path, self.overrides)
            StyleBook(config.style_models(), config.active_style(), config.engine,
                      self.engines).check_artifacts()
            load_server_keys(config.security.curve_secret_key, config.security.authorized_keys)
        except StylecastError as err:
            log.error("reload refused, keeping the running config: %s", err)
            self.notifier.ready(status_line(self.pipeline))
            return False
        log.info("config reloaded from %s", self.config_path or "the defaults")
        self.config = config
        logging.getLogger("stylecast").setLevel(config.log.level.upper())
        return True

    # --- health ------------------------------------------------------------------------------

    def health(self) -> str | None:
        """/healthz: None while stylized frames go out, else why not (the watchdog's rule)."""
        heartbeat = self.heartbeat
        if heartbeat is None or heartbeat.pipeline is not self.pipeline:
            return "starting: no pipeline is running yet"
        return heartbeat.flow.why_not_serving(self.config.source.stall_timeout_s)

    # --- control commands (stylecast.daemon.control.Controlled) ------------------------------

    def status(self) -> dict[str, Any]:
        return {**self.pipeline.status(), "version": installed_version(), "pid": os.getpid(),
                "config": str(self.config_path) if self.config_path else None}

    def styles(self) -> dict[str, Any]:
        book, tunings = self.style_book, self.pipeline.tunings
        loaded = set(book.loaded())
        return {"active": book.active_name,
                "styles": [{"name": name, "model": str(path), "loaded": name in loaded,
                            "active": name == book.active_name, **tunings.of(name).model_dump()}
                           for name, path in book.models.items()]}

    def set_style(self, name: str) -> dict[str, Any]:
        book = self._known_style(name)
        if book.live is None:  # the engine loads with the first frame: start in this style
            book.active_name = name
            return {"style": name, "engine": "loading"}
        self._switching = f"loading style '{name}'"
        try:
            engine = self._while_tending(lambda: book.set_style(name))
        except StylecastError as err:
            raise ControlError(f"style {name!r} cannot be loaded: {err}") from None
        finally:
            self._switching = None
        return {"style": name, "engine": engine.description}

    def _while_tending(self, work: Callable[[], T]) -> T:
        """Run `work` in a helper thread while this (main) thread goes on with what systemd
        expects of it: READY/WATCHDOG/STATUS, and a prompt stop on SIGTERM (ControlError)."""
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = work()
            except BaseException as err:  # handed to the main thread below
                outcome["error"] = err

        worker = threading.Thread(target=run, name="stylecast-set-style", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(CONTROL_POLL_MS / 1000)
            if self._requested == "stop":
                raise ControlError("the daemon is stopping: style switch abandoned")
            if self.heartbeat is not None:
                self.heartbeat.beat()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def pause(self) -> dict[str, Any]:
        self.pipeline.paused = True
        return {"paused": True}

    def resume(self) -> dict[str, Any]:
        self.pipeline.paused = False
        return {"paused": False}

    def set_strength(self, value: float, style: str | None = None) -> dict[str, Any]:
        return self._tune("strength", value, style)

    def set_smoothing(self, value: float, style: str | None = None) -> dict[str, Any]:
        return self._tune("smoothing", value, style)

    def _tune(self, knob: str, value: float, style: str | None) -> dict[str, Any]:
        """Set a style's strength or smoothing (the active style's without `style`): the
        inference stage uses it from its next frame on."""
        name = style or self.style_book.active_name
        self._known_style(name)
        tuning = self.pipeline.tunings.set(name, knob, value)
        log.debug("style '%s': %s is now %g", name, knob, value)
        return {"style": name, **tuning.model_dump()}

    def _known_style(self, name: str) -> StyleBook:
        book = self.style_book
        if name not in book.models:
            raise ControlError(f"unknown style {name!r}; configured: {', '.join(book.models)}")
        return book


class Heartbeat:
    """What the main thread tells systemd about one pipeline: READY=1 once its first frame is
    out, WATCHDOG=1 while frames flow, STATUS= about once a second."""

    def __init__(self, notifier: SystemdNotifier, pipeline: Pipeline,
                 activity: Callable[[], str | None],
                 on_ready: Callable[[], None] = lambda: None) -> None:
        self.notifier = notifier
        self.pipeline = pipeline
        self.activity = activity  # e.g. a style switch under way, added to STATUS=
        self.on_ready = on_ready
        self.ready = False
        self.flow = FrameFlow(pipeline)
        self.watchdog = WatchdogFeeder(notifier.watchdog_interval_s)
        self.next_status = time.monotonic()

    def beat(self) -> None:
        pipeline = self.pipeline
        if not self.ready and pipeline.first_published.is_set():
            self.ready = True
            self.notifier.ready(status_line(pipeline))
            log.info("first frame published: ready")
            self.on_ready()
        self.flow.observe()
        if self.watchdog.due() and self.flow.moved_since(self.watchdog.last_fed_at):
            self.watchdog.fed()
            self.notifier.watchdog()
        if time.monotonic() >= self.next_status:
            self.next_status = time.monotonic() + STATUS_INTERVAL_S
            activity = self.activity()
            line = status_line(pipeline)
            self.notifier.status(f"{line}; {activity}" if activity else line)


class WatchdogFeeder:
    """When the next WATCHDOG=1 is due, and when the last one went."""

    def __init__(self, interval_s: float | None) -> None:
        self.interval_s = interval_s
        self.last_fed_at = 0.0  # monotonic seconds; 0: never

    def due(self) -> bool:
        return (self.interval_s is not None
                and time.monotonic() - self.last_fed_at >= self.interval_s)

    def fed(self) -> None:
        self.last_fed_at = time.monotonic()


def status_line(pipeline: Pipeline) -> str:
    """systemd's STATUS=: one short line with the figures an operator looks at first."""
    health = pipeline.health
    state = health.current_state()
    if state == "opening":  # not "source ...": that prefix means a source in trouble
        return f"opening source {health.uri}"
    if state == "stalled" and health.state == "running":  # a read that has not returned
        return f"source stalled: no frame for {health.seconds_since_frame():.0f} s"
    if state in ("reopening", "stalled"):
        return f"source {state}: {health.last_error}"
    style = pipeline.styles.active_name
    if pipeline.paused:
        return f"paused (style {style})"
    fps = pipeline.stats.fps["publish"].rate()
    return f"{fps:.1f} fps, style {style}"


def free_local_port(first: int = HINT_PORT, tries: int = HINT_PORT_TRIES) -> int | None:
    """A loopback TCP port nothing holds right now: `first` or one of the next few, else one
    the OS picks; None if not even that binds."""
    for port in [*range(first, first + tries), 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    return None


def _require_prometheus_client() -> None:
    """The metrics modules are imported on first use, so a daemon without [metrics] runs
    without prometheus-client (an install from before it joined the `daemon` extra)."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigError(needs("metrics.listen", "prometheus"))


def _retry_bind(make):
    """Bind, retrying briefly on "in use": a reload's previous socket may still be unbinding."""
    for attempt in range(REBIND_ATTEMPTS):
        try:
            return make()
        except StylecastError as err:
            if "in use" not in str(err) or attempt == REBIND_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")
