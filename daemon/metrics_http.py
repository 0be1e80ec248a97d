"""The daemon's HTTP endpoint: GET /metrics (Prometheus text) and GET /healthz; 404 otherwise.

prometheus_client's own server answers the metrics on every path, with no room for a health
route, so this is a small threaded http.server of its own. It has no authentication: the config
keeps it on loopback unless told otherwise, and a wider address is logged as a warning.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from stylecast.core.errors import ConfigError

log = logging.getLogger(__name__)

# /healthz: None while healthy, else one line saying why not.
HealthCheck = Callable[[], str | None]
REQUEST_TIMEOUT_S = 10.0  # a client that stops sending mid-request frees its thread
POLL_S = 0.1  # how soon close() returns (shutdown waits for the serving loop to notice)


class MetricsServer:
    """Serves one registry and one health check on `host:port` from a thread of its own."""

    def __init__(self, listen: str, address: tuple[str, int], registry: CollectorRegistry,
                 health: HealthCheck) -> None:
        self.listen = listen  # as configured, so a reload can tell whether it changed
        self._server = _bind(address, listen, _handler(registry, health))
        host, port = self._server.server_address[:2]
        self.url = f"http://{_url_host(host)}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,),
                                        name="stylecast-metrics", daemon=True)
        self._thread.start()
        _warn_if_exposed(address[0], listen)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _bind(address: tuple[str, int], listen: str,
          handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """The listening server; a ConfigError naming the key when the address cannot be used."""
    server_class = _IPv6Server if ":" in address[0] else ThreadingHTTPServer
    try:
        return server_class(address, handler)
    except OSError as err:
        reason = "address already in use" if err.errno == errno.EADDRINUSE else (
            err.strerror or str(err))
        raise ConfigError(f"key 'metrics.listen' = {listen!r}: cannot listen there: "
                          f"{reason}") from None


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(registry: CollectorRegistry, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(MetricsRequestHandler):
        pass

    Handler.registry = registry
    Handler.health = staticmethod(health)
    return Handler


class MetricsRequestHandler(BaseHTTPRequestHandler):
    registry: CollectorRegistry
    health: HealthCheck
    timeout = REQUEST_TIMEOUT_S
    server_version = "stylecastd"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encode, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(HTTPStatus.OK, encode(self.registry), content_type)
        elif path == "/healthz":
            problem = self.health()
            status = HTTPStatus.OK if problem is None else HTTPStatus.SERVICE_UNAVAILABLE
            self._reply(status, f"{problem or 'ok: frames are flowing'}\n".encode(),
                        "text/plain; charset=utf-8")
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"not found: try /metrics or /healthz\n",
                        "text/plain; charset=utf-8")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _warn_if_exposed(host: str, listen: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("metrics.listen = %r can be reached from other hosts, and /metrics has no "
                    "authentication", listen)
