"""Wiring of a REST backfill run: settings -> client, store, limiter, progress -> Backfill."""

from __future__ import annotations

import argparse

from tickpipe.config import ConfigError
from tickpipe_history.backfill import Backfill, Plan, Report
from tickpipe_history.progress import make_progress
from tickpipe_history.rate_limit import RateLimiter
from tickpipe_history.rest_client import PolygonPages
from tickpipe_history.settings import BackfillSettings
from tickpipe_history.store import HistoryStore


def open_store(settings: BackfillSettings) -> HistoryStore:
    from tickpipe_history.database import open_client

    client = open_client(settings.clickhouse_dsn.get_secret_value(), settings.clickhouse_database)
    return HistoryStore(client, settings.clickhouse_database)


def make_pages(settings: BackfillSettings) -> PolygonPages:
    key = settings.polygon_api_key.get_secret_value()
    if not key:
        raise ConfigError("POLYGON_API_KEY: required for the REST backfill (set the variable)")
    limiter = RateLimiter(settings.requests_per_minute)
    return PolygonPages(
        key,
        settings.polygon_rest_url,
        limiter,
        settings.backfill_max_wait_seconds,
        settings.backfill_concurrency,
    )


def run_rest(
    settings: BackfillSettings,
    datasets: list[str],
    symbols: list[str],
    from_ms: int,
    to_ms: int,
    args: argparse.Namespace,
) -> Report:
    pages = make_pages(settings)
    store = open_store(settings)
    backfill = Backfill(
        store,
        pages,
        concurrency=settings.backfill_concurrency,
        settle_ms=int(settings.backfill_settle_minutes * 60_000),
    )
    plan = Plan(datasets, symbols, from_ms, to_ms, refetch=args.refetch)
    return backfill.run(plan, lambda total: make_progress(args.progress, total))
