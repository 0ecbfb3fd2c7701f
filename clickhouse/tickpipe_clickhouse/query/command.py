"""The `tickpipe query` command: read the SQL, bind parameters, pick a format, print the answer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import BinaryIO

from tickpipe_clickhouse.query.client import QueryFailed, open_query_client, run_raw, run_table
from tickpipe_clickhouse.query.guard import QueryRefused
from tickpipe_clickhouse.query.saved import QueryParamError, saved_queries, saved_query
from tickpipe_clickhouse.settings import ClickHouseSettings

FORMATS = {"csv": "CSVWithNames", "json": "JSONEachRow", "parquet": "Parquet", "tsv": "TSVWithNames"}


class QueryUsageError(Exception):
    """Bad arguments: the message says which and how to fix it (exit 2)."""


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise QueryUsageError(f"--param {pair!r}: write NAME=VALUE, e.g. --param symbol=AAPL")
        params[name.strip()] = value
    return params


def run_query_command(args: argparse.Namespace, settings: ClickHouseSettings) -> int:
    if args.list:
        for query in saved_queries().values():
            print(f"{query.name}: {query.about}")
            for p in query.params:
                default = f" (default {p.default!r})" if p.default is not None else " (required)"
                print(f"    --param {p.name}=...  {p.help}{default}")
        return 0
    params = parse_params(args.param)
    try:
        if args.saved:
            saved = saved_query(args.saved)
            sql, params = saved.sql, saved.bind(params)
        elif args.file:
            sql = Path(args.file).read_text()
        elif args.sql:
            sql = args.sql
        else:
            raise QueryUsageError("give the SQL, -f FILE, --saved NAME or --list")
    except (QueryParamError, OSError) as exc:
        raise QueryUsageError(str(exc)) from None

    out: BinaryIO = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    fmt = args.format or ("table" if out.isatty() else "csv")
    if fmt == "parquet" and out.isatty():
        raise QueryUsageError("Parquet is binary: give -o FILE or redirect stdout")
    client = open_query_client(
        settings.clickhouse_dsn.get_secret_value(),
        settings.clickhouse_database,
        args.allow_writes,
        settings.query_limits(),
    )
    try:
        if fmt == "table":
            out.write(run_table(client, sql, params).encode())
        else:
            out.write(run_raw(client, sql, params, FORMATS[fmt]))
        out.flush()
    except QueryParamError as exc:
        raise QueryUsageError(str(exc)) from None
    except QueryRefused as exc:
        print(f"tickpipe query: refused: {exc}", file=sys.stderr)
        return 1
    except QueryFailed as exc:
        print(f"tickpipe query: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # ClickHouse's own error (syntax, readonly, unknown table): say it plainly
        if type(exc).__module__.startswith("clickhouse_connect"):
            print(f"tickpipe query: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        client.close()
        if args.output:
            out.close()
    return 0
