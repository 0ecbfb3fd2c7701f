"""Every channel end to end: raw Polygon messages through the real processor (a `tickpipe processor`
process on a real broker) and the real sink into chDB, then read back from ClickHouse.

- Conformance: Polygon's own published examples (tests/conformance/polygon_examples.json, each with
  its source), one or more per channel, land in their table with every field as written out in
  tests/conformance/examples.py, and none is dead-lettered.
- Bars: sessions of A-only, AM-only (with a corrected AM), T-only (with condition codes), mixed
  (A + AM + T), crypto XT-only and forex C-only symbols; ohlcv_1m/5m/1h/1d read from ClickHouse
  against bars computed in pandas from the same events by the documented rules.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pandas as pd  # comes with chdb (the test extras)
import pytest
from confluent_kafka import Consumer

from tests.conformance.examples import EXAMPLES, EXPECTED
from tests.conftest import KafkaHandle
from tests.integration.processor_harness import (
    RawRecord,
    all_committed,
    end_offsets,
    produce_raw,
    run_processor,
)
from tests.support import wait_for
from tickpipe import contract
from tickpipe.kafka import ensure_topics
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.batching import Batcher
from tickpipe_clickhouse.sink.dead_letters import DeadLetters
from tickpipe_clickhouse.sink.metrics import SinkMetrics
from tickpipe_clickhouse.sink.sink import Sink
from tickpipe_clickhouse.sink.writer import ClickHouseWriter

pytestmark = pytest.mark.integration

TABLES = ("aggregates", "trades", "quotes", "books")


@contextmanager
def running_sink(kafka: KafkaHandle, topic: str, clickhouse: Any, db: str) -> Iterator[Sink]:
    ensure_topics(kafka.config(), [contract.dlq_topic(topic)])
    consumer = Consumer(
        kafka.config(
            **{
                "group.id": f"sink-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": "false",
                "auto.offset.reset": "earliest",
            }
        )
    )
    sink = Sink(
        consumer,
        topic,
        ClickHouseWriter(clickhouse, db),
        DeadLetters(kafka.config(), contract.dlq_topic(topic)),
        Batcher(500, 1 << 30, 0.2),
        SinkMetrics(),
        retry_max_seconds=0.2,
    )
    thread = threading.Thread(target=sink.run, name="sink-under-test")
    thread.start()
    try:
        yield sink
    finally:
        sink.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the sink did not stop within 60 s"


def counts(clickhouse: Any, db: str) -> dict[str, int]:
    return {t: int(clickhouse.query(f"SELECT count() FROM {db}.{t}").result_rows[0][0]) for t in TABLES}


def through_pipeline(
    kafka: KafkaHandle,
    new_topic: Callable[..., str],
    clickhouse: Any,
    db: str,
    workdir: Path,
    raws: Sequence[dict[str, Any]],
    received_ns: Sequence[int],
) -> None:
    """Raw Polygon events (in this order, one partition per symbol) -> processor -> sink -> `db`."""
    migrate(clickhouse, db)
    raw_topic, filtered = new_topic("raw"), new_topic("filtered", partitions=2)
    records: list[RawRecord] = []
    for raw, received in zip(raws, received_ns, strict=True):
        symbol = raw.get("sym") or raw.get("pair") or raw.get("p") or raw.get("T")
        records.append(
            (str(symbol).encode(), orjson.dumps(raw), [(contract.RECEIVED_NS, str(received).encode())])
        )
    produce_raw(kafka.bootstrap, raw_topic, records)
    group = f"proc-{uuid.uuid4().hex[:8]}"
    with run_processor(kafka.bootstrap, raw_topic, filtered, workdir, group) as proc:
        wait_for(
            lambda: not proc.alive() or all_committed(kafka.bootstrap, group, raw_topic),
            "input committed",
            90,
        )
        assert proc.alive(), proc.tail()
    dlq = contract.dlq_topic(raw_topic)
    ensure_topics(kafka.config(), [dlq])
    assert sum(end_offsets(kafka.bootstrap, dlq).values()) == 0, "the processor dead-lettered an event"
    produced = sum(end_offsets(kafka.bootstrap, filtered).values())
    with running_sink(kafka, filtered, clickhouse, db) as sink:
        wait_for(lambda: sum(counts(clickhouse, db).values()) >= len(raws), "every event in ClickHouse", 90)
        wait_for(lambda: sink.batcher.rows == 0, "the sink's buffer to drain")
    assert produced >= len(raws)  # transaction markers take offsets too
    assert sum(counts(clickhouse, db).values()) == len(raws)


# --- conformance -----------------------------------------------------------------------------------

STORED = [name for name, expected in EXPECTED.items() if expected is not None]
RECEIVED = 1_700_000_000_123_000_000


def _stored_row(clickhouse: Any, db: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The one row of `expected`'s table for its kind and symbol, as contract fields."""
    family = contract.FAMILY_OF_EV[expected["ev"]]
    table = contract.TABLE_OF_FAMILY[family]
    time_key = "start_ms" if family == "aggregate" else "ts_ms"
    rows = clickhouse.query(
        f"SELECT *, toUnixTimestamp64Milli(timestamp) AS {time_key}, "
        f"toUnixTimestamp64Milli(received) AS received_ms"
        + (", toUnixTimestamp64Milli(end_timestamp) AS end_ms" if family == "aggregate" else "")
        + f" FROM {db}.{table} WHERE ev = {{ev:String}} AND symbol = {{symbol:String}}",
        parameters={"ev": expected["ev"], "symbol": expected["symbol"]},
    ).named_results()
    found: list[dict[str, Any]] = list(rows)
    assert len(found) == 1, (expected["ev"], expected["symbol"], found)
    return found[0]


def _as_stored(field: str, value: Any) -> Any:
    """How ClickHouse stores a contract value: absent values as 0 / '' / [] (001_raw_tables.sql),
    book levels as tuples."""
    if value is None:
        return "" if field == "trade_id" else [] if field == "conditions" else False if field == "otc" else 0
    if field in ("bids", "asks"):
        return [tuple(level) for level in value]
    return value


def test_polygons_published_examples_land_field_by_field(
    kafka: KafkaHandle, new_topic: Callable[..., str], clickhouse: Any, ch_database: str, tmp_path: Path
) -> None:
    # One example per (kind, symbol): the T examples share MSFT, so the derived one gets its own.
    raws = []
    expected_of = dict(EXPECTED)  # a copy: the module's table is shared with other tests
    for name in STORED:
        raw = orjson.loads(EXAMPLES[name]["raw"])
        if name.startswith("T derived"):
            raw["sym"] = "MSFT.D"
            expected_of[name] = {**EXPECTED[name], "symbol": "MSFT.D"}  # type: ignore[dict-item]
        raws.append(raw)
    through_pipeline(kafka, new_topic, clickhouse, ch_database, tmp_path, raws, [RECEIVED] * len(raws))

    for name in STORED:
        expected = expected_of[name]
        assert expected is not None
        row = _stored_row(clickhouse, ch_database, expected)
        for field, value in expected.items():
            assert row[field] == _as_stored(field, value), f"{name}: {field} is {row[field]!r}"
        assert row["received_ms"] == RECEIVED // 1_000_000, name
    stored = counts(clickhouse, ch_database)
    tables = [
        contract.TABLE_OF_FAMILY[contract.FAMILY_OF_EV[str(orjson.loads(EXAMPLES[n]["raw"])["ev"])]]
        for n in STORED
    ]
    assert stored == {table: tables.count(table) for table in TABLES}
    # The examples' bars: each symbol from its finest source, the forex quote as the mid.
    bars = {
        (r[0], r[1]): r[2:]
        for r in clickhouse.query(
            f"SELECT symbol, source, open, close, volume FROM {ch_database}.ohlcv_1m ORDER BY symbol"
        ).result_rows
    }
    assert bars[("BCD-USD", "XAS")] == (0.772, 0.784, 951.6112)  # XAS (second) over XA (minute)
    assert bars[("USD/EUR", "CAS")] == (0.8687, 0.86889, 20.0)
    assert bars[("USD/CNH", "C")] == pytest.approx(((6.83363 + 6.83366) / 2, (6.83363 + 6.83366) / 2, 0.0))
    assert bars[("MSFT.D", "T")] == (170.0, 170.0, 100.0)
    assert bars[("SPCE", "A")] == (25.39, 25.39, 200.0)
    assert bars[("GTE", "AM")] == (0.4488, 0.4486, 4110.0)
    # MSFT's one trade carries 12 (Form T): it counts in volume and moves no price, so no bar shows.
    assert ("MSFT", "T") not in bars
    (volume,) = clickhouse.query(
        f"SELECT sum(volume) FROM {ch_database}.bars WHERE seconds = 60 AND symbol = 'MSFT'"
    ).result_rows[0]
    assert volume == 100.0


# --- bars against pandas ---------------------------------------------------------------------------

T0 = 1_733_149_800_000  # 2024-12-02 14:30 UTC, a Monday's open
MINUTE = 60_000
CONDITION_RULES = {  # the built-in trade_conditions rows used here (005_trade_conditions.sql): oc, hl, vol
    0: (True, True, True),
    12: (False, False, True),
    37: (False, False, True),
    15: (False, False, False),
    32: (False, True, True),
    14: (True, True, True),
}


def _session(rng: random.Random) -> tuple[list[dict[str, Any]], list[int]]:
    """Raw events for 7 minutes of several symbols, and their receipt times (ns)."""
    events: list[tuple[int, dict[str, Any]]] = []  # (receipt ms, raw)

    def walk(price: float) -> float:
        return round(max(1.0, price + rng.uniform(-0.5, 0.5)), 2)

    def second_bars(sym: str, price: float) -> None:
        for second in range(7 * 60):
            if rng.random() < 0.3:
                continue  # seconds without trades have no A bar
            s = T0 + second * 1000
            o, c = price, walk(price)
            h, low = max(o, c) + rng.choice((0, 0.01)), min(o, c) - rng.choice((0, 0.02))
            v = rng.randint(1, 900)
            events.append(
                (
                    s + 2000,
                    {
                        "ev": "A",
                        "sym": sym,
                        "v": v,
                        "av": 0,
                        "op": 100,
                        "vw": round((o + c) / 2, 4),
                        "o": o,
                        "c": c,
                        "h": h,
                        "l": low,
                        "a": 100,
                        "z": rng.randint(1, 9),
                        "s": s,
                        "e": s + 1000,
                    },
                )
            )
            price = c

    def minute_bars(sym: str, price: float, corrected: set[int]) -> None:
        for minute in range(7):
            s = T0 + minute * MINUTE
            o, c = price, walk(price)
            h, low, v = max(o, c) + 0.1, min(o, c) - 0.1, rng.randint(1000, 9000)
            bar: dict[str, Any] = {
                "ev": "AM",
                "sym": sym,
                "v": v,
                "av": 0,
                "op": 100,
                "vw": round((o + c) / 2, 4),
                "o": o,
                "c": c,
                "h": h,
                "l": low,
                "a": 100,
                "z": 10,
                "s": s,
                "e": s + MINUTE,
            }
            events.append((s + MINUTE + 100, bar))
            if minute in corrected:  # re-sent with late trades: more volume, a wider range, a new close
                late = {
                    **bar,
                    "v": v + 777,
                    "h": round(h + 0.3, 2),
                    "c": round(c + 0.05, 2),
                    "vw": bar["vw"] + 0.01,
                }
                events.append((s + MINUTE + 20_000, late))
            price = c

    def trades(sym: str, price: float, ev: str = "T", minutes: int = 7) -> None:
        for n in range(300):
            ts = T0 + rng.randrange(minutes * MINUTE)
            price = walk(price)
            if ev == "T":
                codes = rng.choice([None, [], [0], [12], [37], [15], [32], [14, 37], [14]])
                raw = {
                    "ev": "T",
                    "sym": sym,
                    "x": 4,
                    "i": str(n),
                    "z": 3,
                    "p": price,
                    "s": rng.randint(1, 300),
                    "t": ts,
                    "q": n + 1,
                }
                if codes is not None:
                    raw["c"] = codes
            else:
                raw = {
                    "ev": "XT",
                    "pair": sym,
                    "p": price,
                    "t": ts,
                    "s": round(rng.uniform(0.001, 2), 6),
                    "c": [rng.choice((1, 2))],
                    "i": n,
                    "x": 1,
                }
            events.append((ts + 5, raw))

    def quotes(pair: str, mid: float) -> None:
        for _ in range(200):
            ts = T0 + rng.randrange(7 * MINUTE)
            mid = round(mid + rng.uniform(-0.001, 0.001), 5)
            events.append(
                (
                    ts + 5,
                    {
                        "ev": "C",
                        "p": pair,
                        "x": "44",
                        "a": round(mid + 0.0001, 5),
                        "b": round(mid - 0.0001, 5),
                        "t": ts,
                    },
                )
            )

    second_bars("AONLY", 50.0)
    minute_bars("AMONLY", 80.0, corrected={2, 5})
    trades("TONLY", 20.0)
    second_bars("MIXED", 30.0)
    minute_bars("MIXED", 30.0, corrected={1})
    trades("MIXED", 30.0, minutes=9)  # minutes 7 and 8 have trades only: the day's source is still A
    trades("BTC-USD", 40_000.0, ev="XT")
    quotes("EUR/USD", 1.05)
    events.sort(key=lambda e: e[0])  # in receipt order, as the producer would read them
    return [raw for _, raw in events], [received * 1_000_000 + i for i, (received, _) in enumerate(events)]


def _expected_1m(raws: list[dict[str, Any]], received: list[int]) -> pd.DataFrame:
    """1-minute bars by the documented rules, in pandas, one source per symbol."""
    rows = []
    for raw, r in zip(raws, received, strict=True):
        ev = raw["ev"]
        if ev in ("A", "AM"):
            rows.append(
                {
                    "symbol": raw["sym"],
                    "source": ev,
                    "t": raw["s"],
                    "seq": 0,
                    "r": r,
                    "open": raw["o"],
                    "high": raw["h"],
                    "low": raw["l"],
                    "close": raw["c"],
                    "volume": float(raw["v"]),
                    "pv": raw["vw"] * raw["v"],
                    "trades": round(raw["v"] / raw["z"]),
                    "oc": True,
                    "hl": True,
                    "vol": True,
                }
            )
        elif ev in ("T", "XT"):
            oc = hl = vol = True
            if ev == "T":
                rules = [CONDITION_RULES[c] for c in raw.get("c") or []]
                oc, hl, vol = (all(rule[k] for rule in rules) for k in range(3))
            p, s = float(raw["p"]), float(raw["s"])
            rows.append(
                {
                    "symbol": raw.get("sym") or raw.get("pair"),
                    "source": ev,
                    "t": raw["t"],
                    "seq": raw.get("q", 0),
                    "r": r,
                    "open": p,
                    "high": p,
                    "low": p,
                    "close": p,
                    "volume": s,
                    "pv": p * s,
                    "trades": 1,
                    "oc": oc,
                    "hl": hl,
                    "vol": vol,
                }
            )
        elif ev == "C":
            mid = (raw["a"] + raw["b"]) / 2
            rows.append(
                {
                    "symbol": raw["p"],
                    "source": "C",
                    "t": raw["t"],
                    "seq": 0,
                    "r": r,
                    "open": mid,
                    "high": mid,
                    "low": mid,
                    "close": mid,
                    "volume": 0.0,
                    "pv": 0.0,
                    "trades": 0,
                    "oc": True,
                    "hl": True,
                    "vol": False,
                }
            )
    df = pd.DataFrame(rows)
    # Corrections: the latest receipt of an aggregate (same symbol, kind and start) replaces the others.
    aggs = (
        df[df.source.isin(["A", "AM"])]
        .sort_values("r")
        .drop_duplicates(["symbol", "source", "t"], keep="last")
    )
    df = pd.concat([aggs, df[~df.source.isin(["A", "AM"])]])
    df["bucket"] = (df.t // MINUTE) * MINUTE
    rank = {"A": 1, "AM": 2, "T": 3, "XT": 3, "C": 3}
    df["rank"] = df.source.map(rank)
    df["day"] = (df.t // (1440 * MINUTE)) * (1440 * MINUTE)
    finest = df.groupby(["symbol", "day"])["rank"].transform("min")  # one source per symbol and day
    df = df[df["rank"] == finest]
    out = []
    for (symbol, bucket, source), g in df.groupby(["symbol", "bucket", "source"]):
        priced, counted = g[g.oc].sort_values(["t", "seq"]), g[g.vol]
        ranged = g[g.hl]
        if ranged.empty:
            continue  # no print that may set a range: no bar (docs/clickhouse.md)
        volume = counted.volume.sum() if source != "C" else 0.0
        out.append(
            {
                "symbol": symbol,
                "bucket": bucket,
                "source": source,
                "open": priced.open.iloc[0] if len(priced) else 0.0,
                "high": ranged.high.max(),
                "low": ranged.low.min(),
                "close": priced.close.iloc[-1] if len(priced) else 0.0,
                "volume": volume,
                "vwap": counted.pv.sum() / volume if volume else 0.0,
                "trades": int(counted.trades.sum()) if source != "C" else 0,
            }
        )
    return pd.DataFrame(out)


def _roll(m1: pd.DataFrame, width_ms: int) -> pd.DataFrame:
    """Coarser bars from the 1-minute ones of the same source (every source here keeps to one)."""
    ordered = m1.sort_values(["symbol", "bucket"])  # minutes in time order: `first` and `last` below
    df = ordered.assign(bucket=(ordered.bucket // width_ms) * width_ms, pv=ordered.vwap * ordered.volume)
    grouped = df.groupby(["symbol", "bucket", "source"])
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        pv=("pv", "sum"),
        trades=("trades", "sum"),
    ).reset_index()
    out["vwap"] = (out.pv / out.volume).where(out.volume > 0, 0.0)
    return out.drop(columns="pv")


def _from_clickhouse(clickhouse: Any, db: str, level: str) -> pd.DataFrame:
    df = clickhouse.query_df(
        f"SELECT symbol, toUnixTimestamp(bucket) * 1000 AS bucket, source, open, high, low, close, volume, "
        f"vwap, trades FROM {db}.ohlcv_{level} ORDER BY symbol, bucket"
    )
    df["symbol"] = df.symbol.astype(str)
    df["source"] = df.source.astype(str)
    df["bucket"] = df.bucket.astype("int64")
    df["trades"] = df.trades.astype("int64")
    return df


def _compare(got: pd.DataFrame, want: pd.DataFrame, level: str) -> None:
    keys = ["symbol", "bucket"]
    got = got.sort_values(keys).reset_index(drop=True)
    want = want[got.columns].sort_values(keys).reset_index(drop=True)
    assert got[[*keys, "source"]].values.tolist() == want[[*keys, "source"]].values.tolist(), level
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        assert got[column].tolist() == pytest.approx(want[column].tolist(), rel=1e-9, abs=1e-9), (
            level,
            column,
        )
    assert got.trades.tolist() == want.trades.tolist(), level


def test_bars_from_every_source_match_pandas_with_corrections_and_conditions(
    kafka: KafkaHandle, new_topic: Callable[..., str], clickhouse: Any, ch_database: str, tmp_path: Path
) -> None:
    raws, received = _session(random.Random(15))
    through_pipeline(kafka, new_topic, clickhouse, ch_database, tmp_path, raws, received)
    m1 = _expected_1m(raws, received)
    assert set(m1.groupby("symbol").source.unique().map(tuple)) >= {("A",), ("AM",), ("T",), ("XT",), ("C",)}
    assert set(m1[m1.symbol == "MIXED"].source) == {"A"}  # the finest of A, AM and T
    assert len(m1[m1.symbol == "MIXED"]) == 7  # not the two minutes with trades only
    _compare(_from_clickhouse(clickhouse, ch_database, "1m"), m1, "1m")
    for level, width in (("5m", 5 * MINUTE), ("1h", 60 * MINUTE), ("1d", 1440 * MINUTE)):
        _compare(_from_clickhouse(clickhouse, ch_database, level), _roll(m1, width), level)

    # The corrected AM: the raw table keeps both receipts, aggregates_latest and the bars the newer.
    ((receipts, latest),) = clickhouse.query(
        f"SELECT (SELECT count() FROM {ch_database}.aggregates WHERE symbol = 'AMONLY'), "
        f"(SELECT sum(volume) FROM {ch_database}.aggregates_latest WHERE symbol = 'AMONLY')"
    ).result_rows
    assert receipts == 7 + 2
    day = _from_clickhouse(clickhouse, ch_database, "1d")
    assert day[day.symbol == "AMONLY"].volume.iloc[0] == pytest.approx(latest)
    assert latest == pytest.approx(m1[m1.symbol == "AMONLY"].volume.sum())
