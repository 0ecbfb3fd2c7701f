"""ClickHouse's HTTP interface in front of the chDB engine, for measuring the sink in HTTP mode.

There is no ClickHouse server on this machine (no Docker; Debian's package is version 18, too old
for the schema), yet the issue asks for the sink's memory in HTTP mode, where the engine lives in
another process. This serves the part of ClickHouse's HTTP protocol that clickhouse-connect uses
(`POST /?query=...&database=...&param_x=...&<setting>=...`, SQL or insert data in the body, results
in the requested format, errors as `Code: N. DB::Exception: ...` with status 500) from a chDB folder
in *this* process, so the sink process holds only what a sink holds against a real server: Python,
librdkafka, clickhouse-connect and its batches. A benchmark tool, not a server for users.

    python -m bench.clickhouse_http FOLDER PORT
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import sys
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# URL parameters that steer the HTTP exchange rather than being ClickHouse settings.
TRANSPORT = {
    "query", "query_id", "database", "default_format", "session_id", "session_timeout", "session_check",
    "compress", "decompress", "enable_http_compression", "wait_end_of_query", "user", "password",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms", "quota_key",
    "client_protocol_version", "http_response_buffer_size", "cancel_http_readonly_queries_on_client_close",
}  # fmt: skip
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CODE = re.compile(r"Code: (\d+)")
# SQL access management (migration 020's role and profile, `tickpipe migrate`'s reader user): chDB has
# no users, so this front answers them as done, with nothing run (they only matter to a real server).
ACCESS = re.compile(
    r"^\s*(?:(?:CREATE|ALTER|DROP)\s+(?:SETTINGS\s+PROFILE|ROLE|USER|QUOTA|ROW\s+POLICY)|GRANT|REVOKE)\b",
    re.IGNORECASE,
)


class Engine:
    """One chDB connection; ClickHouse settings of a request apply to that request only."""

    def __init__(self, folder: str):
        self.conn = importlib.import_module("chdb").connect(folder)
        self.lock = threading.Lock()

    def run(self, sql: str, fmt: str, params: dict[str, str], settings: dict[str, str], database: str) -> Any:
        if ACCESS.match(sql):
            sql = "SELECT 1 WHERE 0"
        with self.lock:
            applied: list[str] = []
            try:
                if database:
                    self.conn.query(f"USE `{database}`", "TabSeparated")
                for name, value in settings.items():
                    if not SETTING_NAME.match(name):
                        raise ValueError(f"Code: 115. DB::Exception: Unknown setting {name!r}")
                    quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
                    self.conn.query(f"SET {name} = {quoted}", "TabSeparated")
                    applied.append(name)
                return self.conn.query(sql, fmt, params=params)
            finally:
                for name in applied:
                    self.conn.query(f"SET {name} = DEFAULT", "TabSeparated")


def decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":  # lz4 and zstandard come with clickhouse-connect
        return bytes(importlib.import_module("lz4.frame").decompress(body))
    if encoding == "zstd":
        return bytes(importlib.import_module("zstandard").ZstdDecompressor().decompressobj().decompress(body))
    raise ValueError(f"Code: 1. DB::Exception: unsupported Content-Encoding {encoding!r}")


def handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/ping":
                self._answer(200, b"Ok.\n", {})
            else:
                self.do_POST()

        def do_POST(self) -> None:
            url = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            body = self._body()
            try:
                body = decompress(body, (self.headers.get("Content-Encoding") or "").lower())
                if "query" in url:  # the SQL is in the URL and the body is insert data
                    sql, data = url["query"], body
                else:
                    sql, data = body.decode(), b""
                found = TRAILING_FORMAT.search(sql)
                is_insert = sql.lstrip().upper().startswith("INSERT")
                fmt = url.get("default_format") or "TabSeparated"
                if found and not is_insert:
                    fmt, sql = found.group(1), sql[: found.start()]
                params = {k[len("param_") :]: v for k, v in url.items() if k.startswith("param_")}
                settings = {k: v for k, v in url.items() if k not in TRANSPORT and not k.startswith("param_")}
                with tempfile.NamedTemporaryFile(suffix=".data") as infile:
                    if data and found:  # as clickhouse-connect's chDB driver does: INSERT ... FROM INFILE
                        infile.write(data)
                        infile.flush()
                        sql = f"{sql[: found.start()]} FROM INFILE '{infile.name}' FORMAT {found.group(1)}"
                    result = engine.run(sql, fmt, params, settings, url.get("database", ""))
            except Exception as exc:
                text = str(exc)
                code = CODE.search(text)
                self._answer(
                    500,
                    (text if code else f"Code: 1000. DB::Exception: {text}").encode(),
                    {"X-ClickHouse-Exception-Code": code.group(1) if code else "1000"},
                )
                return
            summary = json.dumps({"read_rows": str(result.rows_read()), "written_rows": "0"})
            headers = {"X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC"}
            self._answer(200, result.bytes(), {**headers, "X-ClickHouse-Summary": summary})

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)

        def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def main(argv: list[str] | None = None) -> int:
    folder, port = (argv or sys.argv[1:])[:2]
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), handler(Engine(folder)))
    print(f"serving chDB {folder} as ClickHouse HTTP on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
