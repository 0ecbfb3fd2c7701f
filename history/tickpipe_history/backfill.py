"""The REST backfill: plan the chunks not done yet, fetch them concurrently, store each page once.

    report = Backfill(store, pages, concurrency=4).run(Plan(["trades"], ["AAPL"], from_ms, to_ms))

Chunks already `done` in backfill_progress are skipped (the watermarks), so a second run fetches
only what is new; a chunk cut short (kill -9, a failed page) is fetched again from its start and
the store drops what it already holds, so nothing is doubled. A 403 stops that dataset (reported);
a rejected key stops the run (`KeyRejected`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tickpipe_history.datasets import DATASETS, Chunk, chunks, first_requests
from tickpipe_history.pages import Invalid, decode
from tickpipe_history.progress import NoProgress, Progress
from tickpipe_history.rest_client import GaveUp, KeyRejected, NotEntitled, PolygonPages, RequestFailed
from tickpipe_history.store import HistoryStore

log = logging.getLogger(__name__)

EXIT_OK = 0
BATCH_ROWS = 250_000  # rows of one listing per insert (5 full pages)
EXIT_INCOMPLETE = 4  # something was not loaded: see the report (failed chunks, DLQ, 403)


@dataclass(frozen=True)
class Plan:
    datasets: list[str]
    symbols: list[str]
    from_ms: int
    to_ms: int  # exclusive
    refetch: bool = False  # ignore the watermarks (done chunks are fetched again; still no row twice)


@dataclass
class Report:
    chunks_planned: int = 0
    chunks_skipped: int = 0  # already done
    chunks: dict[str, int] = field(default_factory=dict)  # state -> count
    pages: int = 0
    dlq_pages: int = 0
    rows_fetched: int = 0
    rows_inserted: int = 0
    requests: int = 0
    fetch_s: float = 0.0  # time in REST requests (summed over workers)
    store_s: float = 0.0  # time ClickHouse was busy with events
    retries: dict[str, int] = field(default_factory=dict)
    not_entitled: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def exit_code(self) -> int:
        incomplete = self.chunks.get("failed", 0) or self.dlq_pages or self.not_entitled
        return EXIT_INCOMPLETE if incomplete else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        rate = self.rows_fetched / self.seconds if self.seconds else 0.0
        return {
            "event": "backfill_done",
            **self.__dict__,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(rate),
        }


@dataclass
class _ChunkResult:
    state: str
    pages: int = 0
    dlq_pages: int = 0
    rows_fetched: int = 0
    rows_inserted: int = 0
    failure: str | None = None


class Backfill:
    def __init__(
        self,
        store: HistoryStore,
        pages: PolygonPages,
        concurrency: int = 4,
        batch_rows: int = BATCH_ROWS,
        settle_ms: int = 15 * 60_000,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ):
        self.store = store
        self.pages = pages
        self.concurrency = concurrency
        self.batch_rows = batch_rows
        self.settle_ms = settle_ms
        self.now_ms = now_ms
        self.not_entitled: dict[str, str] = {}
        self.stop = threading.Event()

    def plan(self, plan: Plan) -> tuple[list[Chunk], int]:
        """(chunks to fetch, chunks skipped because done)."""
        todo: list[Chunk] = []
        skipped = 0
        for name in plan.datasets:
            done = set() if plan.refetch else self.store.done_chunks(name)
            for chunk in chunks(DATASETS[name], plan.symbols, plan.from_ms, plan.to_ms):
                if (chunk.symbol, chunk.start_ms) in done:
                    skipped += 1
                else:
                    todo.append(chunk)
        return todo, skipped

    def run(self, plan: Plan, progress_for: Callable[[int], Progress] | None = None) -> Report:
        """Fetch and store every chunk of `plan` not done yet; `progress_for(total)` shows it."""
        started = time.monotonic()
        todo, skipped = self.plan(plan)
        progress = progress_for(len(todo)) if progress_for else NoProgress()
        report = Report(chunks_planned=len(todo) + skipped, chunks_skipped=skipped)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="backfill") as pool:
            futures: dict[Future[_ChunkResult], Chunk] = {pool.submit(self._chunk, c): c for c in todo}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    error = future.exception()
                    if isinstance(error, KeyRejected):
                        self.stop.set()
                        for other in pending:
                            other.cancel()
                        raise error
                    if error is not None:
                        raise error
                    result = future.result()
                    self._tally(report, futures[future], result)
                    progress.advance(1, result.rows_fetched)
        progress.close()
        report.not_entitled = dict(self.not_entitled)
        report.requests = self.pages.requests
        report.fetch_s = round(self.pages.fetch_s, 3)
        report.store_s = round(self.store.busy_s, 3)
        report.retries = {str(status): n for status, n in self.pages.retried.items()}
        report.seconds = time.monotonic() - started
        return report

    def _tally(self, report: Report, chunk: Chunk, result: _ChunkResult) -> None:
        report.chunks[result.state] = report.chunks.get(result.state, 0) + 1
        report.pages += result.pages
        report.dlq_pages += result.dlq_pages
        report.rows_fetched += result.rows_fetched
        report.rows_inserted += result.rows_inserted
        if result.failure:
            report.failures.append(f"{chunk.describe()}: {result.failure}")

    def _chunk(self, chunk: Chunk) -> _ChunkResult:
        name = chunk.dataset.name
        if self.stop.is_set() or name in self.not_entitled:
            return _ChunkResult("skipped")
        self.store.mark(name, chunk.symbol, chunk.start_ms, chunk.end_ms, "started", 0, 0)
        result = _ChunkResult("done")
        try:
            for request in first_requests(chunk):
                self._listing(chunk, request, result)
        except NotEntitled as exc:
            self.not_entitled.setdefault(name, str(exc))
            log.warning("%s is not in this plan (403): %s", name, exc)
            return _ChunkResult("not_entitled")
        except (RequestFailed, GaveUp) as exc:
            result.state, result.failure = "failed", f"{exc.status} {exc}"
            if isinstance(exc, RequestFailed):
                self._dead_letter(chunk, chunk.describe(), result.pages, "request_failed", str(exc), b"")
                result.dlq_pages += 1
        if result.state == "done" and chunk.end_ms > self.now_ms() - self.settle_ms:
            result.state = "partial"  # REST may not have all of it yet: fetch it again next time
        self.store.mark(
            name, chunk.symbol, chunk.start_ms, chunk.end_ms, result.state, result.pages, result.rows_inserted
        )
        return result

    def _listing(self, chunk: Chunk, request: Any, result: _ChunkResult) -> None:
        """Follow one listing's pages; their rows are stored in batches of about `batch_rows`
        (a ClickHouse insert, with its views, costs about as much for 1k rows as for 50k)."""
        where = chunk.describe()
        pending: list[Any] = []
        received: list[int] = []  # each pending row's page arrival (ns)
        body = self.pages.first(request)
        while True:
            received_ns = time.time_ns()
            result.pages += 1
            try:
                rows, next_url = decode(body, chunk.dataset.row)
            except Invalid as bad:
                self._dead_letter(chunk, where, result.pages - 1, bad.reason, bad.detail, body)
                result.dlq_pages += 1
                result.state, result.failure = "failed", f"a page went to the DLQ: {bad.reason}"
                next_url = bad.next_url
            else:
                result.rows_fetched += len(rows)
                pending += rows
                received += [received_ns] * len(rows)
            last = not next_url or self.stop.is_set()
            if pending and (last or len(pending) >= self.batch_rows or not chunk.dataset.ev):
                result.rows_inserted += self._store(chunk, pending, received)
                pending, received = [], []
            if last:
                return
            assert next_url is not None
            parts = urlsplit(next_url)
            where = parts.path + (f"?{parts.query}" if parts.query else "")
            body = self.pages.follow(next_url)

    def _store(self, chunk: Chunk, rows: list[Any], received_ns: list[int]) -> int:
        d = chunk.dataset
        if d.table in ("aggregates", "trades", "quotes"):
            return self.store.store_events(d.table, chunk.symbol, d.ev, rows, received_ns, d.span_ms)
        if d.table == "daily_bars":
            return self.store.store_daily(chunk.day, rows)
        if d.table == "tickers":
            return self.store.store_tickers(rows)
        return self.store.store_conditions(rows)

    def _dead_letter(
        self, chunk: Chunk, request: str, page: int, reason: str, detail: str, body: bytes
    ) -> None:
        log.warning("REST page to the DLQ: %s page %d: %s", request, page, reason)
        self.store.dead_letter(chunk.dataset.name, chunk.symbol, request, page, reason, detail, body)
