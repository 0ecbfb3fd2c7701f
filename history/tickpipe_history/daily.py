"""`tickpipe daily`: the once-a-day history job, for one UTC day (by default yesterday).

1. the whole market's grouped daily bars and the tickers reference of that day (incremental: a day
   already `done` in backfill_progress is not fetched again);
2. the trade conditions, fetched again every day (a ReplacingMergeTree: a new version, no doubles);
3. a re-check of that day's feed gaps: for each gap in `feed_gaps` that `tickpipe repair` has
   finished (state `repaired`, at least BACKFILL_SETTLE_MINUTES ago), the gap's window (widened by
   REPAIR_MARGIN_SECONDS, whole bars) is backfilled again per subscribed channel and symbol, straight
   into ClickHouse. The backfill stores only identities ClickHouse does not hold, so this adds exactly
   what REST did not have yet when the repair ran (it gives up waiting after
   REPAIR_REST_MAX_WAIT_SECONDS), and nothing twice; the gap's `rows_restored` grows by what it adds.
   Gaps still `repairing` are the repair service's (re-checking them could double what it is about
   to publish): they are reported as pending and left alone.

Everything goes through the backfill (tickpipe_history.backfill): the same rate limit, 429 handling,
DLQ, 403 reporting and exit codes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tickpipe.contract import GAP_STATE_FIELDS
from tickpipe_history.backfill import EXIT_OK, Backfill, Plan, Report
from tickpipe_history.datasets import DATASETS, DAY_MS
from tickpipe_history.repair import Gap, Repairer
from tickpipe_history.repair_events import CHANNEL_DATASET, channels

log = logging.getLogger(__name__)

REFERENCE = ["grouped_daily", "tickers"]


def day_window(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in Unix ms."""
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return start, start + DAY_MS


def yesterday(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


class GapLog:
    """The `feed_gaps` table (011_feed_gaps.sql), written directly: the daily job runs beside a
    ClickHouse it may write (it backfills straight into it too), so a re-checked gap's new
    `rows_restored` is one more version of its row (ReplacingMergeTree(version): the newest wins)."""

    def __init__(self, client: Any, database: str):
        self.client = client
        self.db = database

    def record(self, gap: Gap, state: str, rows: int) -> None:
        def at(ms: int) -> dt.datetime:
            return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)

        now = time.time_ns()
        row = [gap.gap_id, gap.feed, at(gap.from_ms), at(gap.to_ms), list(gap.topics), gap.why, state, rows]
        self.client.insert(
            f"`{self.db}`.feed_gaps", [[*row, at(now // 1_000_000), now]], column_names=list(GAP_STATE_FIELDS)
        )


@dataclass(frozen=True)
class StoredGap:
    gap: Gap
    state: str
    rows_restored: int
    updated_ms: int


def gaps_of_day(client: Any, database: str, day: dt.date) -> list[StoredGap]:
    """Every gap in `feed_gaps` that overlaps the UTC day, newest version of each."""
    lo, hi = day_window(day)
    sql = (
        "SELECT gap_id, feed, toUnixTimestamp64Milli(gap_from), toUnixTimestamp64Milli(gap_to), "  # noqa: S608
        "topics, why, toString(state), rows_restored, toUnixTimestamp64Milli(updated) "
        f"FROM `{database}`.feed_gaps FINAL "
        "WHERE gap_to >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND gap_from < fromUnixTimestamp64Milli({hi:Int64}, 'UTC') ORDER BY gap_from, gap_id"
    )
    rows = client.query(sql, parameters={"lo": lo, "hi": hi}).result_rows
    return [
        StoredGap(
            Gap(str(gid), str(feed), int(start), int(end), tuple(str(t) for t in topics), str(why)),
            str(state),
            int(restored),
            int(updated),
        )
        for gid, feed, start, end, topics, why, state, restored, updated in rows
    ]


def recheck_plans(gap: Gap, repairer: Repairer) -> list[Plan]:
    """One backfill plan per channel of the gap: its dataset, its symbols, the widened window."""
    lo, hi = repairer.window(gap)
    plans = []
    for channel, wanted in sorted(channels(gap.topics).items()):
        dataset = DATASETS[CHANNEL_DATASET[channel]]
        span = dataset.span_ms
        # A bar is sent when it ends: the one ending in the window may start a bar earlier.
        start = lo - lo % span - span if span else lo
        end = hi - hi % span + span if span else hi + 1
        plans.append(Plan([dataset.name], repairer.symbols(wanted), start, end, refetch=True))
    return plans


@dataclass
class DailyReport:
    day: dt.date
    steps: dict[str, Report] = field(default_factory=dict)
    gaps_rechecked: dict[str, int] = field(default_factory=dict)  # gap id -> rows it still lacked
    gaps_pending: list[str] = field(default_factory=list)  # not finished by `tickpipe repair` yet
    requests: int = 0
    seconds: float = 0.0

    def exit_code(self) -> int:
        return max((report.exit_code() for report in self.steps.values()), default=EXIT_OK)

    def as_dict(self) -> dict[str, Any]:
        steps = {
            name: {
                "chunks": r.chunks,
                "rows_fetched": r.rows_fetched,
                "rows_inserted": r.rows_inserted,
                "dlq_pages": r.dlq_pages,
                "not_entitled": r.not_entitled,
                "failures": r.failures,
            }
            for name, r in self.steps.items()
        }
        return {
            "event": "daily_done",
            "day": self.day.isoformat(),
            "steps": steps,
            "gaps_rechecked": self.gaps_rechecked,
            "gaps_pending": self.gaps_pending,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


def _merge(total: Report, part: Report) -> None:
    for state, count in part.chunks.items():
        total.chunks[state] = total.chunks.get(state, 0) + count
    total.chunks_planned += part.chunks_planned
    total.rows_fetched += part.rows_fetched
    total.rows_inserted += part.rows_inserted
    total.dlq_pages += part.dlq_pages
    total.not_entitled.update(part.not_entitled)
    total.failures += part.failures


class DailyJob:
    def __init__(
        self,
        backfill: Backfill,
        repairer: Repairer,
        gap_log: GapLog,
        settle_ms: int,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ):
        self.backfill = backfill
        self.repairer = repairer
        self.gap_log = gap_log
        self.settle_ms = settle_ms
        self.now_ms = now_ms

    def close(self) -> None:
        """Let go of ClickHouse (an embedded chDB folder is free again between `--at` runs)."""
        self.gap_log.client.close()

    def run(self, day: dt.date) -> DailyReport:
        started = time.monotonic()
        report = DailyReport(day)
        lo, hi = day_window(day)
        report.steps["reference"] = self.backfill.run(Plan(REFERENCE, [], lo, hi))
        report.steps["conditions"] = self.backfill.run(Plan(["conditions"], [], 0, DAY_MS, refetch=True))
        report.steps["gaps"] = self._recheck(day, report)
        report.requests = self.backfill.pages.requests
        report.seconds = time.monotonic() - started
        return report

    def _recheck(self, day: dt.date, report: DailyReport) -> Report:
        total = Report()
        settled_before = self.now_ms() - self.settle_ms
        for stored in gaps_of_day(self.gap_log.client, self.gap_log.db, day):
            gap = stored.gap
            if stored.state != "repaired" or stored.updated_ms > settled_before:
                report.gaps_pending.append(gap.gap_id)
                continue
            added = 0
            for plan in recheck_plans(gap, self.repairer):
                part = self.backfill.run(plan)
                _merge(total, part)
                added += part.rows_inserted
            report.gaps_rechecked[gap.gap_id] = added
            if added:
                log.warning(
                    "a repaired gap still lacked rows; now stored",
                    extra={"fields": {"gap_id": gap.gap_id, "rows_added": added}},
                )
                self.gap_log.record(gap, "repaired", stored.rows_restored + added)
        return total


def open_daily(settings: Any) -> DailyJob:
    """The job wired from RepairSettings (the backfill's settings plus the repair's margin and symbols)."""
    from tickpipe_history.run import make_pages, open_store

    pages = make_pages(settings)
    store = open_store(settings)
    settle_ms = int(settings.backfill_settle_minutes * 60_000)
    backfill = Backfill(store, pages, concurrency=settings.backfill_concurrency, settle_ms=settle_ms)
    symbols = [s.strip() for s in settings.repair_symbols.split(",") if s.strip()] or None
    repairer = Repairer(pages, int(settings.repair_margin_seconds * 1000), symbols)
    return DailyJob(backfill, repairer, GapLog(store.client, store.db), settle_ms)
