"""Shared parts of the history tests: a finished simulator session, its ground truth, a backfill run
in-process on the test's chDB database, and what ClickHouse holds, in comparable shapes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_history.backfill import Backfill, Plan, Report
from tickpipe_history.rate_limit import RateLimiter
from tickpipe_history.rest_client import PolygonPages
from tickpipe_history.store import HistoryStore
from tickpipe_simulator.testing import SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

START = "2024-03-07T14:30:00Z"
START_MS = 1_709_821_800_000
DAY = dt.date(2024, 3, 7)
DAY_MS = 1_709_769_600_000  # 2024-03-07T00:00:00Z
SYMBOLS = ["NVDA", "TSLA", "AAPL"]
EVENTS = ["minute_aggs", "second_aggs", "trades", "quotes"]


def session_args(seconds: int = 120, rate: int = 2000, symbols: int = 5, seed: int = 3) -> list[str]:
    return [
        "--seed", str(seed), "--rate", str(rate), "--symbols", str(symbols), "--start", START,
        "--session-seconds", str(seconds), "--speed", "500",
    ]  # fmt: skip


def finished(sim: SimulatorProcess) -> dict[str, Any]:
    """Wait until the whole session is in the simulator's REST history; its stats."""
    return sim.wait_stats(lambda s: s["feed"]["finished"], "the session's end", timeout=120)


@dataclass
class Truth:
    """What the simulator's websocket sent, per kind, as ClickHouse rows would read back."""

    trades: list[tuple[Any, ...]] = field(default_factory=list)
    quotes: list[tuple[Any, ...]] = field(default_factory=list)
    seconds: list[tuple[Any, ...]] = field(default_factory=list)
    minutes: list[tuple[Any, ...]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.__dict__.items()}


def truth(stats: dict[str, Any], symbols: list[str]) -> Truth:
    out = Truth()
    wanted = set(symbols)
    for e in session_events(spec_from_stats(stats)):
        if e.get("sym") not in wanted:
            continue
        ev = e["ev"]
        if ev == "T":
            out.trades.append(
                (e["sym"], e["t"], e["q"], e["x"], e["i"], e["p"], e["s"], tuple(e.get("c", ())))
            )
        elif ev == "Q":
            out.quotes.append((e["sym"], e["t"], e["q"], e["bp"], e["bs"], e["ap"], e["as"]))
        elif ev in ("A", "AM"):
            bar = (e["sym"], e["s"], e["o"], e["h"], e["l"], e["c"], e["v"], e["vw"])
            (out.seconds if ev == "A" else out.minutes).append(bar)
    for rows in out.__dict__.values():
        rows.sort()
    return out


def stored(client: Any, db: str) -> Truth:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in client.query(sql.format(db=db)).result_rows)

    bar = "symbol, toUnixTimestamp64Milli(timestamp), open, high, low, close, volume, vwap"
    return Truth(
        trades=[
            (*r[:7], tuple(r[7]))
            for r in rows(
                "SELECT symbol, toUnixTimestamp64Milli(timestamp), sequence, exchange, trade_id, price, "
                "size, conditions FROM `{db}`.trades"
            )
        ],
        quotes=rows(
            "SELECT symbol, toUnixTimestamp64Milli(timestamp), sequence, bid_price, bid_size, ask_price, "
            "ask_size FROM `{db}`.quotes"
        ),
        seconds=rows(f"SELECT {bar} FROM `{{db}}`.aggregates WHERE ev = 'A'"),
        minutes=rows(f"SELECT {bar} FROM `{{db}}`.aggregates WHERE ev = 'AM'"),
    )


def backfill(
    client: Any,
    db: str,
    sim: SimulatorProcess,
    datasets: list[str],
    symbols: list[str] = SYMBOLS,
    from_ms: int = DAY_MS,
    to_ms: int = DAY_MS + 86_400_000,
    refetch: bool = False,
    concurrency: int = 4,
    max_wait_s: float = 120.0,
) -> Report:
    migrate(client, db)
    pages = PolygonPages(sim.api_key, sim.base_url, RateLimiter(0), max_wait_s, concurrency)
    runner = Backfill(HistoryStore(client, db), pages, concurrency=concurrency)
    return runner.run(Plan(datasets, symbols, from_ms, to_ms, refetch=refetch))


def volumes_by_symbol(rows: list[tuple[Any, ...]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for row in rows:
        total[row[0]] += row[6]
    return dict(total)


def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "sim"
    path.mkdir(exist_ok=True)
    return path
