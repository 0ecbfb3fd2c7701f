"""`tickpipe export` (heavy imports happen inside the handler)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from tickpipe.config import add_settings_flags, flag_overrides, load_settings

if TYPE_CHECKING:
    from tickpipe_research.export.settings import ExportSettings


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tickpipe_research.export.settings import ExportSettings

    export = commands.add_parser(
        "export",
        help="days of trades, quotes, aggregates and bars as Parquet on S3 (written by ClickHouse)",
        description="Writes EXPORT_URI/DATASET/date=D/symbol=S/part.parquet and a _manifest.json per "
        "dataset and day; re-running a day replaces it exactly. Example: tickpipe export --date 2026-12-01 "
        "--export-uri s3://research/tickpipe",
    )
    export.add_argument("--date", type=_date, default=None, help="the UTC day to export (default: yesterday)")
    export.add_argument("--until", type=_date, default=None, help="export every day from --date to this one")
    export.add_argument(
        "--at", default=None, help="run every day at HH:MM UTC, exporting the day before, until stopped"
    )
    add_settings_flags(export, ExportSettings)
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from tickpipe.config import ConfigError
    from tickpipe.logs import setup_logging
    from tickpipe.schedule import parse_at, run_daily, stop_on_signals
    from tickpipe_research.export.settings import ExportSettings

    settings = load_settings(ExportSettings, flag_overrides(args))
    if args.at is None:
        return _export_days(settings, args.date, args.until)
    if args.date or args.until:
        raise ConfigError("--at exports the day before each run: it excludes --date and --until")
    try:
        at = parse_at(args.at)
    except ValueError as exc:
        raise ConfigError(f"--at: {exc}") from None
    setup_logging(settings.log_level, settings.log_format)
    return run_daily(at, lambda: _export_days(settings, None, None), stop_on_signals(), "tickpipe export")


def _export_days(settings: ExportSettings, first: dt.date | None, until: dt.date | None) -> int:
    from tickpipe_clickhouse.connect import ClickHouseUnavailable
    from tickpipe_research.export.command import ExportError, days_between, run_export

    first = first or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    try:
        done = run_export(settings, days_between(first, until or first))
    except (ExportError, ClickHouseUnavailable, ValueError) as exc:
        print(f"tickpipe export: {exc}", file=sys.stderr)
        return 2
    for day in done:
        print(
            f"{day.day} {day.dataset}: {day.rows} rows in {day.files} files, "
            f"{day.bytes} bytes, {day.seconds:.2f} s",
            flush=True,
        )
    return 0
