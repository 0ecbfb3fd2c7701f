"""The console's state on its event loop: the bar book, the websocket clients, conflated fan-out.

Events arrive from the feed reader's thread in batches and are folded into the book on the loop.
Every TICK the changed bars go to the clients subscribed to them, each bar at most once per
CONFLATE seconds per client: a bar that changes 100 times in 250 ms is sent once, with its latest
values, and a bar that changed since its last send is always sent at the end of its quiet period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tickpipe_web.bars import INTERVALS, WINDOW, Bar, BarBook, gaps, interval_seconds
from tickpipe_web.history import History, HistoryUnavailable

log = logging.getLogger(__name__)

CONFLATE = 0.25  # seconds between two updates of the same bar to one client
TICK = 0.025  # how often changed bars are looked at
SEND_TIMEOUT = 2.0  # a client that cannot take an update in this long is dropped (slow consumer)
MAX_SYMBOLS = 50  # per subscription
SEED_RETRY = 10.0  # seconds before history is asked again after it was unavailable

BarKey = tuple[str, int]  # (symbol, bucket)


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    interval: str = "1m"
    symbols: frozenset[str] = frozenset()
    last_sent: dict[BarKey, float] = field(default_factory=dict)
    pending: dict[BarKey, int] = field(default_factory=dict)  # bar -> newest received_ns


class Console:
    def __init__(self, history: History | None):
        self.book = BarBook()
        self.history = history
        self.clients: set[Client] = set()
        self.stages: list[dict[str, Any]] = []
        self.rules_asked: float | None = None  # when trade_conditions was last asked (None: never)
        self.rules_note = "not loaded yet: every trade counts"
        self.seeded: dict[tuple[str, str], float] = {}  # series -> when its history was last asked
        self.history_note: dict[tuple[str, str], str] = {}
        self._seeding: dict[tuple[str, str], asyncio.Task[None]] = {}  # one history query per series
        self.sent = 0  # bar updates sent
        self.dropped_clients = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._fanout: asyncio.Task[None] | None = None
        self._rules: asyncio.Task[None] | None = None

    # --- events ----------------------------------------------------------------------------------

    def deliver_threadsafe(self, events: list[dict[str, Any]]) -> None:
        """Called by the feed reader's thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: shutting down
                loop.call_soon_threadsafe(self.apply, events)

    def apply(self, events: Iterable[dict[str, Any]]) -> None:
        apply = self.book.apply
        for event in events:
            apply(event)

    # --- fan-out ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._rules = asyncio.create_task(self.load_rules(), name="trade-rules")
        self._fanout = asyncio.create_task(self._fan_out_forever(), name="fan-out")

    async def stop(self) -> None:
        if self._rules is not None:
            self._rules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rules
        if self._fanout is not None:
            self._fanout.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fanout
        for client in list(self.clients):
            await client.ws.close()

    async def _fan_out_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.fan_out(time.monotonic())
            except Exception:
                log.exception("fan-out failed")

    def _route(self) -> None:
        """Move the book's changed bars to the pending sets of the clients that want them."""
        dirty = self.book.take_dirty()
        if not dirty or not self.clients:
            return
        wanted: dict[tuple[str, str], list[Client]] = {}
        for client in self.clients:
            for symbol in client.symbols:
                wanted.setdefault((symbol, client.interval), []).append(client)
        for (symbol, interval, bucket), received_ns in dirty.items():
            for client in wanted.get((symbol, interval), ()):
                client.pending[(symbol, bucket)] = received_ns

    async def fan_out(self, now: float) -> None:
        self._route()
        sends = []
        sent_ms = int(time.time() * 1000)
        for client in self.clients:
            due = [key for key in client.pending if now - client.last_sent.get(key, -1e9) >= CONFLATE]
            if not due:
                continue
            bars = []
            for key in due:
                received_ns = client.pending.pop(key)
                client.last_sent[key] = now
                bar = self.book.bar(key[0], client.interval, key[1])
                if bar is not None:
                    bars.append(_bar_message(key[0], client.interval, bar, received_ns))
            if len(client.last_sent) > 4 * len(INTERVALS) * max(1, len(client.symbols)):
                client.last_sent = {k: t for k, t in client.last_sent.items() if now - t < CONFLATE}
            if bars:
                self.sent += len(bars)
                sends.append(self._send(client, {"type": "bars", "sent_ms": sent_ms, "bars": bars}))
        if sends:
            await asyncio.gather(*sends)

    async def _send(self, client: Client, message: dict[str, Any]) -> None:
        if client.ws.closed:  # the client went away; its handler forgets it
            self.clients.discard(client)
            return
        try:
            await asyncio.wait_for(client.ws.send_bytes(orjson.dumps(message)), SEND_TIMEOUT)
        except TimeoutError:  # it cannot keep up: a slow consumer
            self.dropped_clients += 1
            self.clients.discard(client)
            with contextlib.suppress(Exception):
                await client.ws.close(code=1008, message=b"slow consumer")
        except (ConnectionError, RuntimeError):  # it closed while the update was on its way
            self.clients.discard(client)

    # --- subscriptions ---------------------------------------------------------------------------

    async def subscribe(self, client: Client, symbols: list[str], interval: str) -> None:
        interval_seconds(interval)  # BadInterval for the caller
        client.symbols = frozenset(symbols[:MAX_SYMBOLS])
        client.interval = interval
        client.pending.clear()
        client.last_sent.clear()
        self.clients.add(client)
        await client.ws.send_bytes(
            orjson.dumps({"type": "subscribed", "symbols": sorted(client.symbols), "interval": interval})
        )
        for symbol in sorted(client.symbols):
            await self.ensure_seeded(symbol, interval)
            bars = self.window(symbol, interval)
            message = {
                "type": "snapshot",
                "symbol": symbol,
                "interval": interval,
                "bars": [bar.as_json() for bar in bars],
                "gaps": gaps(bars, interval_seconds(interval)),
                "history": self.history_note.get((symbol, interval), "ok"),
            }
            await client.ws.send_bytes(orjson.dumps(message))

    def window(self, symbol: str, interval: str) -> list[Bar]:
        seconds = interval_seconds(interval)
        end = (int(time.time()) // seconds + 1) * seconds
        return self.book.bars(symbol, interval, end - WINDOW * seconds, None)

    async def load_rules(self) -> None:
        """Read trade_conditions once; while it cannot be read, every stock trade counts (asked again
        with the next history query, at most every SEED_RETRY seconds)."""
        if self.history is None or self.book.rules.loaded:
            return
        if self.rules_asked is not None and time.monotonic() - self.rules_asked < SEED_RETRY:
            return
        self.rules_asked = time.monotonic()
        try:
            rules = await asyncio.get_running_loop().run_in_executor(None, self.history.trade_rules)
        except Exception as exc:
            self.rules_note = f"unavailable ({type(exc).__name__}): every trade counts"
            log.warning("trade conditions %s", self.rules_note)
            return
        self.book.rules = rules
        self.rules_note = "ok"

    async def ensure_seeded(self, symbol: str, interval: str) -> None:
        """Fill the chart's window from ClickHouse once per series (again later if it was unavailable);
        clients asking for a series being seeded wait for the same query."""
        key = (symbol, interval)
        task = self._seeding.get(key)
        if task is None:
            task = self._seeding[key] = asyncio.create_task(self._seed(symbol, interval))
            task.add_done_callback(lambda _: self._seeding.pop(key, None))
        await asyncio.shield(task)

    async def _seed(self, symbol: str, interval: str) -> None:
        key = (symbol, interval)
        asked = self.seeded.get(key)
        if self.history is None:
            return
        await self.load_rules()
        if asked is not None and (key not in self.history_note or time.monotonic() - asked < SEED_RETRY):
            return  # seeded already, or unavailable a moment ago
        self.seeded[key] = time.monotonic()
        seconds = interval_seconds(interval)
        end = (int(time.time()) // seconds + 1) * seconds
        try:
            history = await asyncio.get_running_loop().run_in_executor(
                None, self.history.bars, symbol, interval, end - WINDOW * seconds, end
            )
        except HistoryUnavailable as exc:
            self.history_note[key] = f"unavailable: {exc}"
            return
        except Exception as exc:
            self.history_note[key] = f"unavailable: {type(exc).__name__}: {str(exc)[:200]}"
            return
        self.history_note.pop(key, None)
        self.book.seed(symbol, interval, history)

    async def bars_between(self, symbol: str, interval: str, start: int, end: int) -> dict[str, Any]:
        """History from ClickHouse for [start, end), with the live book's bars where it has them."""
        note = "ok"
        merged: dict[int, Bar] = {}
        if self.history is not None:
            try:
                for bar in await asyncio.get_running_loop().run_in_executor(
                    None, self.history.bars, symbol, interval, start, end
                ):
                    merged[bar.time] = bar
            except HistoryUnavailable as exc:
                note = f"unavailable: {exc}"
            except Exception as exc:
                note = f"unavailable: {type(exc).__name__}: {str(exc)[:200]}"
        since = self.book.live_since(symbol, interval)
        for bar in self.book.bars(symbol, interval, start, end):
            if (since is not None and bar.time >= since) or bar.time not in merged:
                merged[bar.time] = bar
        bars = [merged[t] for t in sorted(merged)]
        return {
            "symbol": symbol,
            "interval": interval,
            "bars": [bar.as_json() for bar in bars],
            "gaps": gaps(bars, interval_seconds(interval)),
            "history": note,
        }


def _bar_message(symbol: str, interval: str, bar: Bar, received_ns: int) -> dict[str, Any]:
    return {"symbol": symbol, "interval": interval, **bar.as_json(), "received_ns": received_ns}
