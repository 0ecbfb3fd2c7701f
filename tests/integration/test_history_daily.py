"""`tickpipe daily` against the simulator: the day's reference data, and a re-check of the day's gaps
that stores exactly what a finished repair left missing (nothing twice, a pending gap left alone).

ClickHouse first holds the session's trades and second bars except a 20 s hole (as if the repair had
found nothing there); `feed_gaps` says the hole was repaired. The expected rows are the simulator's
ground truth, and the count the re-check must add is computed from it independently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.history_support import (
    DAY,
    DAY_MS,
    START_MS,
    SYMBOLS,
    backfill,
    finished,
    session_args,
    stored,
    truth,
)
from tickpipe_history.backfill import Backfill
from tickpipe_history.daily import DailyJob, GapLog
from tickpipe_history.rate_limit import RateLimiter
from tickpipe_history.repair import Gap, Repairer
from tickpipe_history.rest_client import PolygonPages
from tickpipe_history.store import HistoryStore
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration

HOLE = (START_MS + 20_000, START_MS + 40_000)
SETTLE_MS = 15 * 60_000


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, dict[str, Any]]]:
    with SimulatorProcess(tmp_path_factory.mktemp("sim"), *session_args(seconds=60)) as sim:
        yield sim, finished(sim)


def _job(client: Any, db: str, sim: SimulatorProcess, clock_ahead_ms: int) -> DailyJob:
    pages = PolygonPages(sim.api_key, sim.base_url, RateLimiter(0), 120.0, 4)
    store = HistoryStore(client, db)
    return DailyJob(
        Backfill(store, pages, concurrency=4, settle_ms=SETTLE_MS),
        Repairer(pages, margin_ms=0, symbols=SYMBOLS),  # the `*` subscriptions' symbols
        GapLog(client, db),
        SETTLE_MS,
        now_ms=lambda: time.time_ns() // 1_000_000 + clock_ahead_ms,
    )


def _one(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql).result_rows]


def test_daily_loads_the_reference_and_fills_what_a_repaired_gap_still_lacks(
    session: tuple[SimulatorProcess, dict[str, Any]], clickhouse: Any, ch_database: str
) -> None:
    sim, stats = session
    db = ch_database
    for lo, hi in ((DAY_MS, HOLE[0]), (HOLE[1], DAY_MS + 86_400_000)):  # everything but the hole
        loaded = backfill(clickhouse, db, sim, ["trades", "second_aggs"], from_ms=lo, to_ms=hi)
        assert loaded.exit_code() == 0, loaded.as_dict()
    expected = truth(stats, SYMBOLS)
    in_hole = [t for t in expected.trades if HOLE[0] <= t[1] < HOLE[1]]
    in_hole += [b for b in expected.seconds if HOLE[0] <= b[1] < HOLE[1]]
    assert len(in_hole) > 100
    before = stored(clickhouse, db)
    assert len(before.trades) + len(before.seconds) == len(expected.trades) + len(expected.seconds) - len(
        in_hole
    )

    gaps = GapLog(clickhouse, db)
    repaired = Gap("sim:hole", "sim", HOLE[0], HOLE[1], ("T.*", "A.*"), "producer restart")
    gaps.record(repaired, "repaired", 7)
    # A gap the repair service has not finished: re-checking it could double what it will publish.
    open_gap = Gap("sim:open", "sim", START_MS + 45_000, START_MS + 50_000, ("Q.NVDA",), "eviction")
    gaps.record(open_gap, "repairing", 0)

    # Just repaired (less than the settle time ago): both gaps are left to the repair service.
    early = _job(clickhouse, db, sim, clock_ahead_ms=0).run(DAY)
    assert early.exit_code() == 0, early.as_dict()
    assert early.gaps_rechecked == {}
    assert sorted(early.gaps_pending) == ["sim:hole", "sim:open"]
    assert stored(clickhouse, db) == before

    # An hour later the repaired gap is re-checked: exactly the hole's rows are added.
    report = _job(clickhouse, db, sim, clock_ahead_ms=3_600_000).run(DAY)
    assert report.exit_code() == 0, report.as_dict()
    assert report.gaps_rechecked == {"sim:hole": len(in_hole)}
    assert report.gaps_pending == ["sim:open"]
    after = stored(clickhouse, db)
    assert after.trades == expected.trades  # every field, none twice
    assert after.seconds == expected.seconds
    assert after.quotes == []  # the open gap was not touched
    restored = _one(
        clickhouse, f"SELECT state, rows_restored FROM `{db}`.feed_gaps FINAL WHERE gap_id = 'sim:hole'"
    )
    assert restored == [("repaired", 7 + len(in_hole))]

    # The reference data of the day, loaded by the first run; the second found it done.
    assert early.steps["reference"].chunks == {"done": 2}
    assert report.steps["reference"].chunks_skipped == 2
    daily = dict(_one(clickhouse, f"SELECT symbol, volume FROM `{db}`.daily_bars FINAL WHERE day = '{DAY}'"))
    assert len(daily) == 5
    tickers = _one(clickhouse, f"SELECT count(DISTINCT ticker) FROM `{db}`.tickers")[0][0]
    assert tickers >= 5
    conditions = _one(clickhouse, f"SELECT count() FROM `{db}`.trade_conditions FINAL WHERE origin = 'api'")
    assert conditions == [(14,)]
    assert report.steps["conditions"].chunks == {"done": 1}  # fetched again every day

    # Once more: nothing is missing any more, nothing is added.
    again = _job(clickhouse, db, sim, clock_ahead_ms=3_600_000).run(DAY)
    assert again.gaps_rechecked == {"sim:hole": 0}
    assert stored(clickhouse, db) == after


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
        "CLICKHOUSE_DSN": f"chdb://{tmp_path / 'chdb'}",
        "LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "tickpipe_cli", "daily", *args]
    return subprocess.run(
        command, env={**base, **env}, capture_output=True, text=True, timeout=180, check=False
    )


def test_the_daily_command_prints_its_report_and_checks_its_flags(
    session: tuple[SimulatorProcess, dict[str, Any]], tmp_path: Path
) -> None:
    sim, _ = session
    rest = {"POLYGON_REST_URL": sim.base_url}
    good = _cli(tmp_path, "--date", DAY.isoformat(), POLYGON_API_KEY=sim.api_key, **rest)
    assert good.returncode == 0, good.stderr[-2000:]
    assert sim.api_key not in good.stdout + good.stderr
    report = json.loads(good.stdout.strip().splitlines()[-1])
    assert report["event"] == "daily_done"
    assert report["day"] == DAY.isoformat()
    assert report["steps"]["reference"]["chunks"] == {"done": 2}  # grouped daily, tickers
    assert report["steps"]["reference"]["rows_inserted"] >= 5
    assert report["steps"]["conditions"]["rows_inserted"] == 14
    assert report["gaps_rechecked"] == {}
    assert report["gaps_pending"] == []

    missing = _cli(tmp_path, "--date", DAY.isoformat(), **rest)
    assert missing.returncode == 2
    assert "POLYGON_API_KEY" in missing.stderr
    bad_time = _cli(tmp_path, "--at", "25:00", POLYGON_API_KEY=sim.api_key, **rest)
    assert bad_time.returncode == 2
    assert "HH:MM" in bad_time.stderr
    both = _cli(tmp_path, "--date", DAY.isoformat(), "--at", "06:00", POLYGON_API_KEY=sim.api_key, **rest)
    assert both.returncode == 2
    assert "--at" in both.stderr
