"""Prometheus metrics and the health endpoint, served from one small HTTP thread per service.

`GET /metrics` is Prometheus text; `GET /healthz` answers 200 while the service's health check
returns (True, detail) and 503 otherwise (ECS and docker-compose health checks call it).

It binds 127.0.0.1 unless told otherwise (METRICS_HOST; the images set 0.0.0.0). A connection
that sends nothing is closed after `REQUEST_TIMEOUT_S`, and at most `MAX_CONNECTIONS` are served at
once: one more is closed at once, so idle connections cannot pile up threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tickpipe.http_server import BoundedThreadingHTTPServer

HealthCheck = Callable[[], tuple[bool, dict[str, object]]]
REQUEST_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 8


class MetricsServer:
    """Serves /metrics for `registry` and /healthz for `health` on `port` (0 picks a free port)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthCheck,
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
    ):
        self.registry = registry
        self.health = health
        self._server = BoundedThreadingHTTPServer((host, port), self._handler(), max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S  # socket timeout: a silent client is dropped

            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    self._send(200, generate_latest(outer.registry), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    ok, detail = outer.health()
                    body = orjson.dumps({"ok": ok, **detail}, default=str)
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would drown the service's own log

        return Handler
