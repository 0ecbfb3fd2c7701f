"""Keeps the live subscriptions equal to the CSV: polls it (ETag), applies only the difference.

A file with any problem is rejected whole and logged with every line number and reason; the last
good set stays in force. SIGHUP forces a reload (`request()`). Any other exception in a reload (a
bug, a failing `apply`) is logged with its traceback and counted in
`tickpipe_producer_subscription_reloader_errors`; the loop goes on with the last good set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tickpipe_producer.metrics import ProducerMetrics
from tickpipe_producer.source import SourceError, SubscriptionSource
from tickpipe_producer.subscriptions import ParseResult, diff, parse_subscriptions

log = logging.getLogger(__name__)

Apply = Callable[[list[str], list[str], frozenset[str]], None]


class InitialLoadError(Exception):
    """No good subscription set at start-up; the message lists every problem (exit 2)."""


def load_initial(source: SubscriptionSource, market: str) -> ParseResult:
    try:
        fetched = source.fetch(force=True)
    except SourceError as exc:
        raise InitialLoadError(str(exc)) from None
    assert fetched is not None
    try:
        result = parse_subscriptions(fetched.content, market)
    except Exception as exc:  # parse_subscriptions lists problems; this is the last line of defence
        raise InitialLoadError(f"{source.uri} cannot be read as subscriptions: {exc}") from None
    if not result.ok:
        problems = "\n".join(f"  {problem}" for problem in result.problems)
        raise InitialLoadError(f"{source.uri} is invalid ({len(result.problems)} problems):\n{problems}")
    for note in result.notes:
        log.info("subscriptions: %s", note)
    return result


class Reloader:
    def __init__(
        self,
        source: SubscriptionSource,
        market: str,
        current: frozenset[str],
        apply: Apply,
        metrics: ProducerMetrics,
        poll_seconds: float,
    ):
        self.source = source
        self.market = market
        self.current = current
        self.apply = apply
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self._forced = asyncio.Event()

    def request(self) -> None:
        """Reload now (SIGHUP), even if the object did not change."""
        self._forced.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiters = {asyncio.create_task(stop.wait()), asyncio.create_task(self._forced.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if stop.is_set():
                return
            forced = self._forced.is_set()
            self._forced.clear()
            try:
                await self.reload(force=forced)
            except Exception:  # the reloader must outlive any one reload
                self.metrics.reloader_errors.inc()
                self.metrics.reloads.labels("failed").inc()
                log.exception(
                    "subscriptions reload failed; keeping the last good set",
                    extra={"fields": {"uri": self.source.uri, "topics": len(self.current)}},
                )

    async def reload(self, force: bool = False) -> bool:
        """Check the CSV once; returns True when the subscriptions changed."""
        try:
            fetched = await asyncio.to_thread(self.source.fetch, force)
        except SourceError as exc:
            self.metrics.reloads.labels("unreadable").inc()
            log.warning(
                "subscriptions CSV unreadable; keeping the current set",
                extra={"fields": {"error": str(exc), "topics": len(self.current)}},
            )
            return False
        if fetched is None:
            return False
        result = parse_subscriptions(fetched.content, self.market)
        if not result.ok:
            self.metrics.reloads.labels("rejected").inc()
            log.error(
                "subscriptions CSV rejected; keeping the last good set",
                extra={
                    "fields": {
                        "uri": self.source.uri,
                        "version": fetched.version,
                        "problems": [str(problem) for problem in result.problems],
                    }
                },
            )
            return False
        add, remove = diff(self.current, result.topics)
        if not add and not remove:
            self.metrics.reloads.labels("unchanged").inc()
            return False
        self.apply(add, remove, result.topics)
        self.current = result.topics
        self.metrics.reloads.labels("applied").inc()
        log.info(
            "subscriptions changed",
            extra={
                "fields": {
                    "subscribed": add,
                    "unsubscribed": remove,
                    "topics": len(result.topics),
                    "version": fetched.version,
                }
            },
        )
        return True
