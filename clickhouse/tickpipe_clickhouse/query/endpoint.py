"""Live queries on the embedded engine: the sink serves them, because it holds the chDB folder.

chDB lets one process open a data folder. While `tickpipe sink` runs on `chdb://PATH` it opens a
second, read-only (readonly=2) client on the same engine and serves it on loopback:
`POST /query` with `{"sql", "params", "format"}` answers the ClickHouse output bytes. It advertises
itself in `PATH/tickpipe-query.json` (url, pid, a random token, database; mode 0600, removed on
exit). `tickpipe query` reads that file and asks the sink; with no live sink it opens the folder
itself. Parameters are bound by ClickHouse on the sink side, exactly as over HTTP.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DISCOVERY_FILE = "tickpipe-query.json"
MAX_BODY = 1 << 20


def discovery_path(folder: Path) -> Path:
    return folder / DISCOVERY_FILE


class QueryEndpoint:
    """Serves read-only SQL from `client` on 127.0.0.1:`port` and advertises it in `folder`."""

    def __init__(self, client: Any, folder: Path, database: str, port: int = 0):
        self.client = client
        self.folder = folder
        self.database = database
        self.token = secrets.token_hex(16)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="query-endpoint", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> QueryEndpoint:
        self._thread.start()
        path = discovery_path(self.folder)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            info = {"url": self.url, "pid": os.getpid(), "token": self.token, "database": self.database}
            json.dump(info, out)
        tmp.replace(path)
        log.info("query endpoint ready", extra={"fields": {"url": self.url, "discovery": str(path)}})
        return self

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            discovery_path(self.folder).unlink()
        self._server.shutdown()
        self._server.server_close()

    def run(self, sql: str, params: dict[str, str], fmt: str) -> bytes:
        with self._lock:
            return bytes(self.client.raw_query(sql, parameters=params or None, fmt=fmt))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    self._send(200, b'{"ok": true}')
                else:
                    self._send(404, b"not found\n")

            def do_POST(self) -> None:
                supplied = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not hmac.compare_digest(supplied, outer.token):
                    self._send(401, b"bad or missing token\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != "/query" or length > MAX_BODY:
                    self._send(400, b"POST /query with a JSON body under 1 MiB\n")
                    return
                try:
                    request = json.loads(self.rfile.read(length))
                    params = dict(request.get("params") or {})
                    body = outer.run(str(request["sql"]), params, str(request["format"]))
                except Exception as exc:  # the caller gets ClickHouse's words, the sink keeps running
                    self._send(400, f"{type(exc).__name__}: {exc}".encode())
                    return
                self._send(200, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
