"""Ad hoc SQL against the configured ClickHouse, and saved queries by name (`run_saved`).

Whichever way ClickHouse is reached, the caller holds an object with clickhouse-connect's
`query(sql, parameters=...)` (rows) and `raw_query(sql, parameters=..., fmt=...)` (bytes): a real
clickhouse-connect client, or `EndpointClient` when a running sink holds the chDB folder.
Parameters use ClickHouse's `{name:Type}` placeholders and are always bound server-side.
A direct client is a `GuardedClient`: every statement passes guard.py before it runs, on a
session at readonly=1 under the operator's limits (limits.py). The endpoint does the same on its side.
"""

from __future__ import annotations

import json
import math
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
from tickpipe_clickhouse.query import guard
from tickpipe_clickhouse.query.endpoint import discovery_path
from tickpipe_clickhouse.query.limits import QueryLimits, open_reader
from tickpipe_clickhouse.query.saved import QueryParamError, saved_query

_PLACEHOLDER = re.compile(r"\{(\w+):")
_NUMERIC_TYPE = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")
PROBE_SECONDS = 2.0


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
            raise QueryFailed(exc.read().decode(errors="replace").strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise QueryFailed(f"the sink's query endpoint at {self.url} did not answer: {exc}") from None

    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> Rows:
        answer = json.loads(self.raw_query(query, parameters, fmt="JSONCompact"))
        names = tuple(column["name"] for column in answer["meta"])
        return Rows(names, [tuple(row) for row in answer["data"]])

    def alive(self) -> bool:
        """The endpoint answers /healthz (a discovery file can outlive its endpoint)."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=PROBE_SECONDS) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def close(self) -> None:
        return


class GuardedClient:
    """A clickhouse-connect client on which only what guard.py allows runs (read-only, no files)."""

    def __init__(self, client: Any):
        self.client = client

    def query(self, query: str, parameters: Mapping[str, Any] | None = None) -> Any:
        canonical = guard.check(self.client, query, parameters)
        return self.client.query(canonical, parameters=parameters or None)

    def raw_query(self, query: str, parameters: Mapping[str, Any] | None = None, fmt: str = "TSV") -> bytes:
        fmt = guard.output_format(fmt)
        canonical = guard.check(self.client, query, parameters)
        return bytes(self.client.raw_query(canonical, parameters=parameters or None, fmt=fmt))

    def close(self) -> None:
        self.client.close()


def open_query_client(
    dsn: str, database: str, allow_writes: bool = False, limits: QueryLimits | None = None
) -> Any:
    """The sink's endpoint if a live sink holds this chDB folder, else a guarded direct client.

    `allow_writes` (the operator's `--allow-writes`, direct connections only) skips the guard and
    readonly: whoever can open the folder or holds writer credentials can write anyway.
    """
    target = Target(dsn)
    if target.embedded:
        endpoint = live_endpoint(target.folder)
        if endpoint is not None and endpoint.alive():
            return endpoint
    if allow_writes:
        return connect(dsn, database)
    return GuardedClient(open_reader(dsn, database, limits or QueryLimits()))


def live_endpoint(folder: Path) -> EndpointClient | None:
    """The query endpoint of a live sink holding this chDB folder, if there is one."""
    path = discovery_path(folder)
    try:
        info = json.loads(path.read_text())
        pid, url, token = int(info.get("pid", 0)), str(info["url"]), str(info["token"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not pid_alive(pid) or pid == os.getpid():
        return None  # a sink that died without cleaning up, or ourselves
    return EndpointClient(url, token)


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


def run_table(client: QueryClient, sql: str, params: Mapping[str, str] | None = None) -> str:
    """The answer as an aligned text table, from ClickHouse's own text for each value.

    Nothing is rebuilt as a Python object on the way (a DateTime64 past year 9999 cannot fail to
    convert; nan and inf stay nan and inf), and the column types decide the alignment.
    """
    lines = run_raw(client, sql, params, "TSVWithNamesAndTypes").decode(errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        raise QueryFailed("ClickHouse answered without the column names and types")
    names = [_tsv_value(n) or "" for n in lines[0].split("\t")]
    numeric = [bool(_NUMERIC_TYPE.match(_tsv_value(t) or "")) for t in lines[1].split("\t")]
    rows = [tuple(_tsv_value(v) for v in line.split("\t")) for line in lines[2:]]
    return render_table(names, rows, numeric)


def _tsv_value(field: str) -> str | None:
    """One TabSeparated field: `\\N` is NULL, backslash escapes undone."""
    if field == "\\N":
        return None
    return _TSV_ESCAPE.sub(lambda m: _TSV_CHARS.get(m.group(1), m.group(1)), field)


_TSV_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_TSV_CHARS = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "a": "\a", "v": "\v"}


def render_table(
    names: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None
) -> str:
    """An aligned text table: numbers right-aligned, everything else left-aligned.

    Control characters (ANSI escapes, NUL, newlines) are shown escaped (`\\x1b`), never raw.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    heads = [printable(str(n)) for n in names]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(heads)]
    if numeric is None:
        numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(names))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(heads), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def printable(text: str) -> str:
    """`text` with every non-printable character as its Python escape (ESC -> \\x1b, NUL -> \\x00)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    try:
        if value is None:
            return "NULL"
        if isinstance(value, float):
            return f"{value:.10g}" if math.isfinite(value) else str(value)
        if isinstance(value, list | dict):
            return printable(json.dumps(value, ensure_ascii=False, default=str))
        return printable(str(value))
    except Exception:  # a value whose str() fails still gets a cell
        return printable(f"<{type(value).__name__}>")
