"""`tickpipe backfill`: history from Polygon's REST API (or flat files) into ClickHouse.

Exit codes: 0 everything asked for is loaded; 2 bad configuration (e.g. no POLYGON_API_KEY);
3 the API key was rejected; 4 finished, but something was not loaded (a dataset outside the plan
(403), a chunk that failed, a page in backfill_dlq): the report on stdout says what; 5 ClickHouse
could not be reached.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from tickpipe.config import ConfigError, add_settings_flags, flag_overrides, load_settings
from tickpipe_history.settings import BackfillSettings

if TYPE_CHECKING:
    from tickpipe_history.repair import RepairSettings

EXIT_KEY_REJECTED = 3
EXIT_CLICKHOUSE = 5


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tickpipe_history.datasets import DATASETS, DEFAULT_DATASETS

    backfill = commands.add_parser(
        "backfill",
        help="load history (REST or flat files) into ClickHouse, incrementally and exactly once",
        description="Examples: tickpipe backfill --from 2024-03-01 --to 2024-03-07 --symbols AAPL,MSFT "
        "--datasets minute_aggs,trades; tickpipe backfill --source flatfiles --from 2024-03-01",
    )
    backfill.add_argument("--from", dest="from_", required=True, help="first day (YYYY-MM-DD) or ISO time")
    backfill.add_argument("--to", help="last day (inclusive) or ISO time (exclusive) [now]")
    backfill.add_argument("--symbols", default="", help="tickers, comma separated (per-symbol datasets)")
    backfill.add_argument(
        "--datasets",
        default=",".join(DEFAULT_DATASETS),
        help=f"comma separated, from: {', '.join(DATASETS)} [{','.join(DEFAULT_DATASETS)}]",
    )
    backfill.add_argument("--source", choices=["rest", "flatfiles"], default="rest")
    backfill.add_argument("--refetch", action="store_true", help="fetch done chunks again (no row twice)")
    backfill.add_argument("--progress", choices=["auto", "bar", "json", "none"], default="auto")
    add_settings_flags(backfill, BackfillSettings)
    backfill.set_defaults(func=_backfill)

    from tickpipe_history.repair import RepairSettings

    repair = commands.add_parser(
        "repair", help="fill every websocket gap (FEED_GAPS_TOPIC) from REST into RAW_TOPIC, exactly once"
    )
    add_settings_flags(repair, RepairSettings)
    repair.set_defaults(func=_repair)

    daily = commands.add_parser(
        "daily",
        help="the daily history job: grouped daily bars, tickers, conditions, a re-check of the day's gaps",
        description="Loads one UTC day (default: yesterday) and prints its report as JSON. With --at HH:MM "
        "it runs every day at that UTC time until stopped (where no scheduler runs it: docker-compose).",
    )
    daily.add_argument("--date", default=None, help="the UTC day (YYYY-MM-DD) [yesterday]")
    daily.add_argument("--at", default=None, help="run every day at HH:MM UTC, for the day before")
    add_settings_flags(daily, RepairSettings)
    daily.set_defaults(func=_daily)


def _repair(args: argparse.Namespace) -> int:
    from tickpipe.logs import setup_logging
    from tickpipe_history.repair import RepairSettings, run_repair

    settings = load_settings(RepairSettings, flag_overrides(args))
    setup_logging(settings.log_level, settings.log_format)
    return run_repair(settings)


def _daily(args: argparse.Namespace) -> int:
    from tickpipe.logs import setup_logging
    from tickpipe.schedule import parse_at, run_daily, stop_on_signals, utc_now
    from tickpipe_history.daily import yesterday
    from tickpipe_history.repair import RepairSettings

    settings = load_settings(RepairSettings, flag_overrides(args))
    setup_logging(settings.log_level, settings.log_format)
    if args.at is None:
        day = parse_day(args.date) if args.date else yesterday(utc_now())
        return _daily_once(settings, day)
    if args.date:
        raise ConfigError("--date and --at exclude each other: --at always loads the day before each run")
    try:
        at = parse_at(args.at)
    except ValueError as exc:
        raise ConfigError(f"--at: {exc}") from None
    stop = stop_on_signals()
    return run_daily(at, lambda: _daily_once(settings, yesterday(utc_now())), stop, "tickpipe daily")


def _daily_once(settings: RepairSettings, day: dt.date) -> int:
    import orjson

    from tickpipe_history.daily import open_daily
    from tickpipe_history.database import ClickHouseUnavailable
    from tickpipe_history.rest_client import KeyRejected

    try:
        job = open_daily(settings)
        try:
            report = job.run(day)
        finally:
            job.close()
    except KeyRejected:
        print(
            "tickpipe daily: the REST API rejected the API key (401); check POLYGON_API_KEY", file=sys.stderr
        )
        return EXIT_KEY_REJECTED
    except ClickHouseUnavailable as exc:
        print(f"tickpipe daily: {exc}", file=sys.stderr)
        return EXIT_CLICKHOUSE
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    sys.stdout.flush()
    return report.exit_code()


def parse_day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"--date: {value!r} is not a day (YYYY-MM-DD)") from None


def parse_when(value: str, end: bool) -> int:
    """YYYY-MM-DD (a whole UTC day; `end` = the day after), ISO 8601 (naive = UTC) or Unix ms."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end else 0)
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"cannot read the time {value!r}: use YYYY-MM-DD or ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _backfill(args: argparse.Namespace) -> int:
    import orjson

    from tickpipe.logs import setup_logging
    from tickpipe_history.database import ClickHouseUnavailable
    from tickpipe_history.datasets import DATASETS
    from tickpipe_history.rest_client import KeyRejected

    settings = load_settings(BackfillSettings, flag_overrides(args))
    setup_logging(settings.log_level, settings.log_format)
    from_ms = parse_when(args.from_, end=False)
    to_ms = parse_when(args.to, end=True) if args.to else dt.datetime.now(dt.UTC).timestamp() * 1000
    if to_ms <= from_ms:
        raise ConfigError("--to must be after --from")
    datasets = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise ConfigError(f"--datasets: unknown {', '.join(unknown)} (known: {', '.join(DATASETS)})")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if args.source == "rest" and any(DATASETS[name].per_symbol for name in datasets) and not symbols:
        raise ConfigError("--symbols: the per-symbol datasets need at least one ticker")
    try:
        if args.source == "flatfiles":
            from tickpipe_history.flatfiles import run_flatfiles

            report = run_flatfiles(settings, int(from_ms), int(to_ms), args.refetch)
        else:
            from tickpipe_history.run import run_rest

            report = run_rest(settings, datasets, symbols, int(from_ms), int(to_ms), args)
    except KeyRejected:
        print(
            "tickpipe backfill: the REST API rejected the API key (401); check POLYGON_API_KEY",
            file=sys.stderr,
        )
        return EXIT_KEY_REJECTED
    except ClickHouseUnavailable as exc:
        print(f"tickpipe backfill: {exc}", file=sys.stderr)
        return EXIT_CLICKHOUSE
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    return report.exit_code()
