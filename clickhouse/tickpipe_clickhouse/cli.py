"""`tickpipe sink`, `tickpipe migrate` and `tickpipe query` (heavy imports happen inside handlers)."""

from __future__ import annotations

import argparse
import sys

from tickpipe.config import add_settings_flags, flag_overrides, load_settings
from tickpipe_clickhouse.settings import ClickHouseSettings, MigrateSettings, SinkSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sink = commands.add_parser("sink", help="FILTERED_TOPIC -> ClickHouse, exactly once")
    add_settings_flags(sink, SinkSettings)
    sink.set_defaults(func=_sink)

    migrate = commands.add_parser("migrate", help="create or upgrade tickpipe's ClickHouse schema")
    migrate.add_argument("--raw-ttl-days", type=int, default=None, help="drop raw rows older than N days")
    add_settings_flags(migrate, MigrateSettings)
    migrate.set_defaults(func=_migrate)

    query = commands.add_parser(
        "query",
        help="ad hoc SQL on ClickHouse (read-only); saved queries by name",
        description='Examples: tickpipe query "SELECT count() FROM trades"; '
        "tickpipe query --saved bars --param symbol=AAPL --param interval=5m; tickpipe query --list",
    )
    source = query.add_mutually_exclusive_group()
    source.add_argument("sql", nargs="?", help="the SQL text")
    source.add_argument("-f", "--file", help="read the SQL from this file")
    source.add_argument("--saved", metavar="NAME", help="run a saved query from clickhouse/queries/")
    source.add_argument("--list", action="store_true", help="list the saved queries and their parameters")
    query.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="bind {NAME:Type} (repeatable)"
    )
    query.add_argument(
        "--format",
        choices=["table", "csv", "json", "parquet", "tsv"],
        default=None,
        help="output format (default: table on a terminal, csv otherwise)",
    )
    query.add_argument("-o", "--output", help="write to this file instead of stdout")
    query.add_argument(
        "--allow-writes",
        action="store_true",
        help="operators: skip the read-only guard and readonly=1 (direct connections only)",
    )
    add_settings_flags(query, ClickHouseSettings)
    query.set_defaults(func=_query)


def _sink(args: argparse.Namespace) -> int:
    from tickpipe.logs import setup_logging
    from tickpipe_clickhouse.sink.service import run_sink

    settings = load_settings(SinkSettings, flag_overrides(args))
    setup_logging(settings.log_level, settings.log_format)
    return run_sink(settings)


def _migrate(args: argparse.Namespace) -> int:
    from tickpipe_clickhouse.connect import connect
    from tickpipe_clickhouse.schema.migrations import embedded, migrate
    from tickpipe_clickhouse.schema.reader import ensure_reader_user

    settings = load_settings(MigrateSettings, flag_overrides(args))
    client = connect(settings.clickhouse_dsn.get_secret_value())
    ran = migrate(client, settings.clickhouse_database, args.raw_ttl_days or 0)
    print(f"{settings.clickhouse_database}: applied {', '.join(ran) if ran else 'nothing (up to date)'}")
    password = settings.clickhouse_reader_password
    if password is not None and not embedded(client):
        user = settings.clickhouse_reader_user
        ensure_reader_user(client, user, password.get_secret_value(), settings.clickhouse_database)
        print(f"{settings.clickhouse_database}: read-only user {user} ready (role tickpipe_reader)")
    return 0


def _query(args: argparse.Namespace) -> int:
    from tickpipe_clickhouse.connect import ClickHouseUnavailable
    from tickpipe_clickhouse.query.command import QueryUsageError, run_query_command

    try:
        return run_query_command(args, load_settings(ClickHouseSettings, flag_overrides(args)))
    except (QueryUsageError, ClickHouseUnavailable) as exc:
        print(f"tickpipe query: {exc}", file=sys.stderr)
        return 2
