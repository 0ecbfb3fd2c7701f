"""Live queries on the embedded engine: the sink serves them, because it holds the chDB folder.

chDB lets one process open a data folder. While `tickpipe sink` runs on `chdb://PATH` it opens
reader sessions on the same engine (readonly=1 under the operator's limits, limits.py) and serves
them on loopback: `POST /query` with `{"sql", "params", "format"}` answers the ClickHouse output
bytes. It advertises itself in `PATH/tickpipe-query.json` (url, pid, a random token, database;
mode 0600, removed on exit). `tickpipe query` reads that file and asks the sink; with no live sink
it opens the folder itself. Parameters are bound by ClickHouse on the sink side, exactly as over HTTP.

What the endpoint enforces (docs/security.md): the bearer token (compared as bytes, in constant
time); a JSON body of at most 1 MiB with a sane Content-Length; every statement through guard.py;
the format from guard.OUTPUT_FORMATS (never spliced from the request); up to `workers` queries at
once, each on its own chDB session, so a slow one does not hold up the rest; a client that goes
away, or a query running past the limit, has its query killed by id (a marker comment
`/* tickpipe-query <id> */` that KILL QUERY matches); bounded connection threads and socket timeouts.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import queue
import secrets
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tickpipe.http_server import BoundedThreadingHTTPServer
from tickpipe_clickhouse.query import guard

log = logging.getLogger(__name__)

DISCOVERY_FILE = "tickpipe-query.json"
MAX_BODY = 1 << 20
MAX_CONNECTIONS = 32
SOCKET_TIMEOUT = 30.0
WAIT_FOR_READER = 10.0  # a request waits this long for a free session, then gets 503
POLL = 0.1


def discovery_path(folder: Path) -> Path:
    return folder / DISCOVERY_FILE


class Busy(RuntimeError):
    """Every reader session is taken."""


class ClientGone(RuntimeError):
    """The caller closed the connection while its query ran (the query was killed)."""


class TimedOut(RuntimeError):
    """The query ran past the limit and was killed."""


class QueryEndpoint:
    """Serves guarded read-only SQL from `readers` on 127.0.0.1:`port`, advertised in `folder`.

    `readers` are reader sessions (limits.open_reader), one query at a time each; `control` is one
    more, used only to KILL a query whose caller went away. `max_seconds` is the limit the
    sessions run under: a query still running a few seconds past it is killed from here.
    """

    def __init__(
        self,
        readers: Sequence[Any],
        folder: Path,
        database: str,
        port: int = 0,
        control: Any | None = None,
        max_seconds: float = 60.0,
    ):
        if not readers:
            raise ValueError("the query endpoint needs at least one reader session")
        self.folder = folder
        self.database = database
        self.token = secrets.token_hex(16)
        self.max_seconds = max_seconds
        self._readers: queue.Queue[Any] = queue.Queue()
        for reader in readers:
            self._readers.put(reader)
        self._all = list(readers)
        self._control = control if control is not None else readers[0]
        self._control_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=len(readers), thread_name_prefix="query")
        self._server = BoundedThreadingHTTPServer(("127.0.0.1", port), self._handler(), MAX_CONNECTIONS)
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
        self._pool.shutdown(wait=False, cancel_futures=True)

    def close_readers(self) -> None:
        for reader in {id(r): r for r in [*self._all, self._control]}.values():
            with contextlib.suppress(Exception):
                reader.close()

    def authorized(self, header: str) -> bool:
        supplied = header.removeprefix("Bearer ").strip().encode("utf-8", "replace")
        return hmac.compare_digest(supplied, self.token.encode())

    def run(
        self, sql: str, params: dict[str, Any], fmt: str, gone: Callable[[], bool] = lambda: False
    ) -> bytes:
        """Guard, then run on a free reader session; kill it if `gone()` turns true or time runs out."""
        fmt = guard.output_format(fmt)
        try:
            reader = self._readers.get(timeout=WAIT_FOR_READER)
        except queue.Empty:
            raise Busy(f"all {len(self._all)} query sessions are busy; try again") from None
        request_id = uuid.uuid4().hex
        try:
            canonical = guard.check(reader, sql, params)
            marked = f"/* tickpipe-query {request_id} */ {canonical}"
            future: Future[Any] = self._pool.submit(
                reader.raw_query, marked, parameters=params or None, fmt=fmt
            )
            deadline = time.monotonic() + self.max_seconds + 5
            while True:
                try:
                    return bytes(future.result(timeout=POLL))
                except TimeoutError:
                    pass
                if gone():
                    self._kill(request_id, future)
                    raise ClientGone("the caller went away; its query was killed")
                if time.monotonic() > deadline:
                    self._kill(request_id, future)
                    raise TimedOut(f"the query ran past {self.max_seconds:g} s and was killed")
        finally:
            self._readers.put(reader)

    def _kill(self, request_id: str, future: Future[Any]) -> None:
        with self._control_lock, contextlib.suppress(Exception):
            self._control.command(f"KILL QUERY WHERE query LIKE '/* tickpipe-query {request_id} */%' ASYNC")
        with contextlib.suppress(Exception):
            future.result(timeout=30)  # the session is free again only once its query has ended
        log.info("query killed", extra={"fields": {"request": request_id}})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = SOCKET_TIMEOUT

            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    self._send(200, b'{"ok": true}')
                else:
                    self._send(404, b"not found\n")

            def do_POST(self) -> None:
                if not outer.authorized(self.headers.get("Authorization", "")):
                    self._send(401, b"bad or missing token\n")
                    return
                if self.path != "/query":
                    self._send(404, b"POST /query\n")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "")
                except ValueError:
                    self._send(411, b"a Content-Length is required\n")
                    return
                if not 0 < length <= MAX_BODY:
                    self._send(
                        413 if length > MAX_BODY else 400, b"POST /query with a JSON body of 1 B to 1 MiB\n"
                    )
                    return
                try:
                    sql, params, fmt = _parse(self.rfile.read(length))
                except (ValueError, TypeError, KeyError) as exc:
                    self._send(400, f"bad request: {exc}\n".encode())
                    return
                try:
                    body = outer.run(sql, params, fmt, self._gone)
                except guard.QueryRefused as exc:
                    self._send(400, f"refused: {exc}\n".encode())
                    return
                except Busy as exc:
                    self._send(503, f"{exc}\n".encode())
                    return
                except TimedOut as exc:
                    self._send(504, f"{exc}\n".encode())
                    return
                except ClientGone:
                    self.close_connection = True
                    return
                except Exception as exc:  # the caller gets ClickHouse's words, the sink keeps running
                    self._send(400, f"{type(exc).__name__}: {exc}".encode())
                    return
                self._send(200, body)

            def _gone(self) -> bool:
                """The caller closed its end (readable with nothing to read)."""
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
                except (OSError, ValueError):
                    return True

            def _send(self, status: int, body: bytes) -> None:
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


def _parse(raw: bytes) -> tuple[str, dict[str, Any], str]:
    request = json.loads(raw)
    if not isinstance(request, dict):
        raise ValueError("the body must be a JSON object")
    sql, params, fmt = request["sql"], request.get("params") or {}, request.get("format", "TSV")
    if not isinstance(sql, str) or not isinstance(fmt, str) or not isinstance(params, dict):
        raise TypeError("sql and format are strings, params an object")
    return sql, {str(k): v for k, v in params.items()}, fmt  # values are bound, never pasted
