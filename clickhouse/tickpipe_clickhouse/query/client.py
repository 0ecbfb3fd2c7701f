"""Ad hoc SQL against the configured ClickHouse, and saved queries by name (`run_saved`).

Whichever way ClickHouse is reached, the caller holds an object with clickhouse-connect's
`query(sql, parameters=...)` (rows) and `raw_query(sql, parameters=..., fmt=...)` (bytes): a real
clickhouse-connect client, or `EndpointClient` when a running sink holds the chDB folder.
Parameters use ClickHouse's `{name:Type}` placeholders and are always bound server-side.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tickpipe.process import pid_alive
from tickpipe_clickhouse.connect import Target, connect
from tickpipe_clickhouse.query.endpoint import discovery_path
from tickpipe_clickhouse.query.saved import QueryParamError, saved_query

READ_ONLY = {"readonly": 2}  # reads only; 2 (not 1) still lets the driver pass its own settings
_PLACEHOLDER = re.compile(r"\{(\w+):")


class QueryClient(Protocol):
    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> Any: ...
    def raw_query(self, query: str, parameters: Mapping[str, Any] | None = None, fmt: str = ...) -> Any: ...


@dataclass
class Rows:
    """What `EndpointClient.query` returns: the two attributes of clickhouse-connect's QueryResult."""

    column_names: tuple[str, ...]
    result_rows: list[tuple[Any, ...]]


class QueryFailed(RuntimeError):
    """ClickHouse refused or failed the query; the message is ClickHouse's."""


class EndpointClient:
    """Talks to a running sink's read-only query endpoint (see endpoint.py)."""

    def __init__(self, url: str, token: str, timeout: float = 300.0):
        self.url = url
        self.token = token
        self.timeout = timeout

    def raw_query(self, query: str, parameters: Mapping[str, Any] | None = None, fmt: str = "TSV") -> bytes:
        body = json.dumps({"sql": query, "params": dict(parameters or {}), "format": fmt}).encode()
        request = urllib.request.Request(  # noqa: S310 (our own loopback URL from the discovery file)
            f"{self.url}/query", data=body, headers={"Authorization": f"Bearer {self.token}"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (loopback)
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            raise QueryFailed(exc.read().decode(errors="replace")) from None

    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> Rows:
        answer = json.loads(self.raw_query(query, parameters, fmt="JSONCompact"))
        names = tuple(column["name"] for column in answer["meta"])
        return Rows(names, [tuple(row) for row in answer["data"]])

    def close(self) -> None:
        return


def open_query_client(dsn: str, database: str, allow_writes: bool = False) -> Any:
    """The sink's endpoint if a live sink holds this chDB folder, else a direct client."""
    target = Target(dsn)
    if target.embedded:
        endpoint = live_endpoint(target.folder)
        if endpoint is not None:
            return endpoint
    return connect(dsn, database, settings=None if allow_writes else dict(READ_ONLY))


def live_endpoint(folder: Path) -> EndpointClient | None:
    """The query endpoint of a live sink holding this chDB folder, if there is one."""
    path = discovery_path(folder)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not pid_alive(int(info.get("pid", 0))) or int(info["pid"]) == os.getpid():
        return None  # a sink that died without cleaning up, or ourselves
    return EndpointClient(str(info["url"]), str(info["token"]))


def check_params(sql: str, params: Mapping[str, str]) -> None:
    """Every parameter must appear as a {name:Type} placeholder, so the driver binds it server-side."""
    used = set(_PLACEHOLDER.findall(sql))
    unused = sorted(set(params) - used)
    if unused:
        raise QueryParamError(
            f"parameter {', '.join(unused)} is not used in the query; write it as {{{unused[0]}:Type}}, "
            "e.g. WHERE symbol = {symbol:String}"
        )


def run_rows(client: QueryClient, sql: str, params: Mapping[str, str] | None = None) -> Any:
    """Rows and column names (`.result_rows`, `.column_names`)."""
    params = dict(params or {})
    check_params(sql, params)
    return client.query(sql, parameters=params or None)


def run_raw(client: QueryClient, sql: str, params: Mapping[str, str] | None, fmt: str) -> bytes:
    """The result in a ClickHouse output format (CSVWithNames, JSONEachRow, Parquet, ...)."""
    params = dict(params or {})
    check_params(sql, params)
    return bytes(client.raw_query(sql, parameters=params or None, fmt=fmt))


def run_saved(client: QueryClient, name: str, params: Mapping[str, str] | None = None) -> Any:
    """Run saved query `name` (bars, vwap, top_movers, gaps, spread, latest): rows and column names.

    `client` must be opened on tickpipe's database, e.g. `open_query_client(dsn, "tickpipe")`.
    """
    saved = saved_query(name)
    return run_rows(client, saved.sql, saved.bind(params or {}))


def render_table(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned text table: numbers right-aligned, everything else left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(names))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(names)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)
