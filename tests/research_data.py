"""A small, deterministic trading session for the research API, export and examples tests.

Two symbols for ten minutes from 2026-12-01 14:30 UTC: second aggregates, quotes and trades, the
trades placed at, inside and through the quote on purpose. The events are the processor's JSON and
are loaded the way the sink loads them, so the tables (and their rollups) are filled by ClickHouse.
The `expected_*` functions compute answers from the events in plain Python, independently of SQL.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from collections import defaultdict
from typing import Any

import orjson

from tickpipe_clickhouse.connect import INSERT_SETTINGS
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS, route

START = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)
START_MS = int(START.timestamp() * 1000)
SECONDS = 600
SYMBOLS = ("AAPL", "MSFT")
Event = dict[str, Any]


def session_events(seed: int = 18) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for symbol, base in zip(SYMBOLS, (230.0, 410.0), strict=True):
        price = base
        quote_ms = START_MS
        sequence = 0
        for second in range(SECONDS):
            start = START_MS + second * 1000
            o = price
            price = round(price + rng.choice((-0.03, -0.01, 0.0, 0.01, 0.02)), 2)
            high, low = round(max(o, price) + 0.01, 2), round(min(o, price) - 0.01, 2)
            volume = float(rng.randint(1, 40) * 10)
            events.append(
                {
                    "ev": "A",
                    "symbol": symbol,
                    "start_ms": start,
                    "end_ms": start + 1000,
                    "open": o,
                    "high": high,
                    "low": low,
                    "close": price,
                    "volume": volume,
                    "vwap": round((o + price) / 2, 4),
                    "avg_size": 10.0,
                    "received_ns": (start + 1020) * 1_000_000,
                }
            )
        # quotes every 150-450 ms, distinct times per symbol; trades every 200-900 ms
        price = base
        while quote_ms < START_MS + SECONDS * 1000:
            price = round(price + rng.choice((-0.02, -0.01, 0.0, 0.01, 0.02)), 2)
            half = rng.choice((0.01, 0.02, 0.05))
            sequence += 1
            events.append(
                {
                    "ev": "Q",
                    "symbol": symbol,
                    "ts_ms": quote_ms,
                    "bid_price": round(price - half, 2),
                    "bid_size": float(rng.randint(1, 9) * 100),
                    "bid_exchange": 11,
                    "ask_price": round(price + half, 2),
                    "ask_size": float(rng.randint(1, 9) * 100),
                    "ask_exchange": 12,
                    "sequence": sequence,
                    "received_ns": (quote_ms + 3) * 1_000_000,
                }
            )
            quote_ms += rng.randint(150, 450)
        quotes = [e for e in events if e["ev"] == "Q" and e["symbol"] == symbol]
        times = [q["ts_ms"] for q in quotes]
        trade_ms = START_MS - 700  # the first trades come before any quote
        while trade_ms < START_MS + SECONDS * 1000:
            at = bisect.bisect_right(times, trade_ms) - 1
            if rng.random() < 0.1 and at >= 0:
                trade_ms = times[at]  # a trade in the same millisecond as its quote
            quote = quotes[at] if at >= 0 else None
            bid, ask = (quote["bid_price"], quote["ask_price"]) if quote else (price - 0.01, price + 0.01)
            place = rng.choice(("bid", "ask", "mid", "below", "above", "mid"))
            trade_price = {
                "bid": bid,
                "ask": ask,
                "mid": round((bid + ask) / 2, 3),
                "below": round(bid - 0.01, 2),
                "above": round(ask + 0.01, 2),
            }[place]
            sequence += 1
            events.append(
                {
                    "ev": "T",
                    "symbol": symbol,
                    "ts_ms": trade_ms,
                    "price": trade_price,
                    "size": float(rng.randint(1, 50)),
                    "exchange": rng.choice((4, 11, 12)),
                    "trade_id": f"{symbol}-{sequence}",
                    "tape": 3,
                    "conditions": rng.choice(([], [12], [14, 41])),
                    "sequence": sequence,
                    "received_ns": (trade_ms + 2) * 1_000_000,
                }
            )
            trade_ms += rng.randint(200, 900)
    return events


def load_session(client: Any, database: str, events: list[Event]) -> None:
    """Create tickpipe's schema in `database` and insert `events` as the sink does."""
    migrate(client, database)
    for table, columns in COLUMNS.items():
        rows = [orjson.dumps(e) for e in events if route(orjson.dumps(e)) == table]
        if rows:
            client.raw_insert(
                f"{database}.{table}",
                columns,
                insert_block=b"\n".join(rows),
                fmt="JSONEachRow",
                settings=INSERT_SETTINGS,
            )


def utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def expected_minute_bars(events: list[Event], symbol: str) -> list[tuple[Any, ...]]:
    """(bucket, open, high, low, close, volume, vwap, trades) per minute, from the second aggregates."""
    minutes: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        if e["ev"] == "A" and e["symbol"] == symbol:
            minutes[e["start_ms"] // 60_000 * 60_000].append(e)
    out = []
    for bucket in sorted(minutes):
        rows = sorted(minutes[bucket], key=lambda e: e["start_ms"])
        volume = sum(e["volume"] for e in rows)
        out.append(
            (
                utc(bucket),
                rows[0]["open"],
                max(e["high"] for e in rows),
                min(e["low"] for e in rows),
                rows[-1]["close"],
                volume,
                sum(e["vwap"] * e["volume"] for e in rows) / volume,
                sum(round(e["volume"] / e["avg_size"]) for e in rows),
            )
        )
    return out


def expected_trades_with_quotes(events: list[Event], symbol: str, staleness_ms: int) -> list[dict[str, Any]]:
    """Each trade of `symbol` with the last quote at or before it, if at most `staleness_ms` old."""
    quotes = sorted((e for e in events if e["ev"] == "Q" and e["symbol"] == symbol), key=lambda q: q["ts_ms"])
    times = [q["ts_ms"] for q in quotes]
    trades = sorted(
        (e for e in events if e["ev"] == "T" and e["symbol"] == symbol),
        key=lambda t: (t["ts_ms"], t["sequence"]),
    )
    out = []
    for trade in trades:
        at = bisect.bisect_right(times, trade["ts_ms"]) - 1
        quote = quotes[at] if at >= 0 and trade["ts_ms"] - times[at] <= staleness_ms else None
        row: dict[str, Any] = {"timestamp": utc(trade["ts_ms"]), "price": trade["price"], "quote": quote}
        if quote is None:
            row["location"] = ""
        else:
            bid, ask, price = quote["bid_price"], quote["ask_price"], trade["price"]
            row["spread"] = ask - bid
            row["position"] = (price - bid) / (ask - bid)
            row["location"] = (
                "below_bid"
                if price < bid
                else "at_bid"
                if price == bid
                else "above_ask"
                if price > ask
                else "at_ask"
                if price == ask
                else "inside"
            )
        out.append(row)
    return out
