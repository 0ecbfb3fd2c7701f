"""`tickpipe processor` on a real broker, rules from S3: each rule drops what it should, every
bad-input class lands in the DLQ with its reason, nothing valid is lost, metrics count it all."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.conftest import KafkaHandle, S3Handle
from tests.integration.processor_harness import (
    RawRecord,
    all_committed,
    produce_raw,
    read_topic,
    run_processor,
)
from tests.support import wait_for
from tickpipe.contract import dlq_topic

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
OPEN = int(datetime(2024, 11, 25, 10, 0, tzinfo=NY).timestamp() * 1000)  # a Monday, 10:00
NIGHT = int(datetime(2024, 11, 25, 22, 0, tzinfo=NY).timestamp() * 1000)
RECEIVED = b"1732546800123456789"
RULES = """\
version: 1
events: [A, AM, T, Q, XT]
symbols: {deny: [TSLA]}
session: regular
min_volume: 10
min_price: 1
dedupe: {window_seconds: 60}
bad_tick: {max_deviation_pct: 10}
"""
MAX_BYTES = 2048


def t(sym: str, q: int, p: float = 100.0, s: int = 100, ts: int = OPEN) -> dict[str, Any]:
    return {"ev": "T", "sym": sym, "x": 4, "i": f"id{q}", "z": 3, "p": p, "s": s, "c": [12], "t": ts, "q": q}


def trade_out(sym: str, q: int, p: float = 100.0, s: int = 100, ts: int = OPEN) -> dict[str, Any]:
    return {
        "ev": "T", "symbol": sym, "ts_ms": ts, "price": p, "size": s, "exchange": 4, "trade_id": f"id{q}",
        "tape": 3, "conditions": [12], "sequence": q, "received_ns": int(RECEIVED),
    }  # fmt: skip


AGG = {"ev": "AM", "sym": "AAPL", "v": 5000, "o": 100.0, "c": 101.0, "h": 102.0, "l": 99.0,
       "vw": 100.5, "s": OPEN, "e": OPEN + 60_000}  # fmt: skip
AGG_OUT = {
    "ev": "AM", "symbol": "AAPL", "start_ms": OPEN, "end_ms": OPEN + 60_000, "open": 100.0, "high": 102.0,
    "low": 99.0, "close": 101.0, "volume": 5000, "vwap": 100.5, "day_volume": None, "day_open": None,
    "day_vwap": None, "avg_size": None, "otc": None, "received_ns": int(RECEIVED),
}  # fmt: skip
QUOTE = {"ev": "Q", "sym": "MSFT", "bx": 4, "bp": 400.0, "bs": 2, "ax": 7, "ap": 400.1, "as": 3, "c": 1,
         "t": OPEN, "q": 9, "z": 3}  # fmt: skip
XT = {"ev": "XT", "pair": "BTC-USD", "p": 97000.5, "s": 12.5, "t": NIGHT, "x": 1, "i": "x1"}

# (raw value, what must become of it): ("out", normalised) | ("filtered", rule) | ("dlq", reason)
CASES: list[tuple[Any, tuple[str, Any]]] = [
    (t("AAPL", 1), ("out", trade_out("AAPL", 1))),
    (t("AAPL", 2, p=105.0), ("out", trade_out("AAPL", 2, p=105.0))),
    (AGG, ("out", AGG_OUT)),
    (QUOTE, ("out", None)),
    (XT, ("out", None)),  # crypto is not held to stock sessions
    (t("TSLA", 3), ("filtered", "symbol_deny")),
    ({**XT, "ev": "XQ", "bp": 1.0, "bs": 1.0, "ap": 1.1, "as": 1.0}, ("filtered", "events")),
    (t("AAPL", 4, s=5), ("filtered", "min_volume")),
    (t("PENNY", 5, p=0.5), ("filtered", "min_price")),
    (t("AAPL", 6, ts=NIGHT), ("filtered", "session")),
    (t("AAPL", 2, p=105.0), ("filtered", "duplicate")),
    (t("AAPL", 7, p=150.0), ("filtered", "bad_tick")),
    (b'{"ev":"T","sym":"AAPL",', ("dlq", "malformed_json")),
    (b"[1,2,3]", ("dlq", "not_an_object")),
    ({"ev": "LULD", "sym": "AAPL"}, ("dlq", "unknown_event")),
    ({"ev": "T", "sym": "AAPL", "x": 4, "s": 1, "t": OPEN}, ("dlq", "missing_field")),
    ({**t("AAPL", 8), "p": "100"}, ("dlq", "wrong_type")),
    (b'{"ev":"T","sym":"AAPL","x":4,"p":NaN,"s":1,"t":1}', ("dlq", "not_finite")),
    (t("AAPL", 9, s=-1), ("dlq", "negative_value")),
    ({**AGG, "h": 1.0}, ("dlq", "high_below_low")),
    ({**AGG, "e": OPEN - 1}, ("dlq", "end_before_start")),
    ({**t("AAPL", 10), "pad": "x" * MAX_BYTES}, ("dlq", "oversized")),
    ("bad-header", ("dlq", "bad_header")),
    (t("AAPL", 11), ("out", trade_out("AAPL", 11))),  # after all the bad input, still flowing
]


def raw_records() -> list[RawRecord]:
    records: list[RawRecord] = []
    for raw, _ in CASES:
        headers: list[tuple[str, str | bytes | None]] = [("tp.feed", b"127.0.0.1/stocks")]
        if raw == "bad-header":
            raw = t("AAPL", 12)
            headers.append(("tp.received_ns", b"yesterday"))
        else:
            headers.append(("tp.received_ns", RECEIVED))
        value = raw if isinstance(raw, bytes) else orjson.dumps(raw)
        key = str(raw.get("sym") or raw.get("pair")).encode() if isinstance(raw, dict) else b"AAPL"
        records.append((key, value, headers))
    return records


def test_rules_from_s3_dlq_reasons_and_metrics(
    kafka: KafkaHandle, new_topic: Callable[..., str], s3: S3Handle, bucket: str, tmp_path: Path
) -> None:
    raw, out = new_topic("raw"), new_topic("filtered")
    s3.client().put_object(Bucket=bucket, Key="rules/processor.yaml", Body=RULES.encode())
    records = raw_records()
    produce_raw(kafka.bootstrap, raw, records)
    group = f"proc-{uuid.uuid4().hex[:8]}"
    env = {**s3.env(), "FILTER_RULES": f"s3://{bucket}/rules/processor.yaml",
           "PROCESSOR_MAX_MESSAGE_BYTES": str(MAX_BYTES)}  # fmt: skip
    with run_processor(kafka.bootstrap, raw, out, tmp_path, group, extra_env=env) as proc:
        wait_for(
            lambda: not proc.alive() or all_committed(kafka.bootstrap, group, raw), "input committed", 90
        )
        assert proc.alive(), proc.tail()
        health = proc.health()
        assert health is not None
        assert health["ok"] is True, health
        assert proc.metric("tickpipe_processor_messages_in_total") == len(CASES)
        assert proc.metric("tickpipe_processor_messages_out_total") == 6
        for rule in ("symbol_deny", "events", "min_volume", "min_price", "session", "duplicate", "bad_tick"):
            assert proc.metric("tickpipe_processor_filtered_total", rule=rule) == 1, rule
        for _, (fate, reason) in CASES:
            if fate == "dlq":
                assert proc.metric("tickpipe_processor_dead_letters_total", reason=reason) == 1, reason
        wait_for(
            lambda: all(
                proc.metric("tickpipe_processor_consumer_lag", partition=str(p)) == 0 for p in range(4)
            ),
            "lag of every partition reported as 0",
            timeout=30,
        )
        assert proc.terminate() == 0, proc.tail()

    output = read_topic(kafka.bootstrap, out)
    expected = [fate[1] for _, fate in CASES if fate[0] == "out"]
    assert len(output) == len(expected)
    got = [record.json() for record in output]
    for want in filter(None, expected):
        assert want in got, want
    assert {r.key for r in output} == {b"AAPL", b"MSFT", b"BTC-USD"}
    assert all(r.key == r.json()["symbol"].encode() for r in output)

    dead = read_topic(kafka.bootstrap, dlq_topic(raw))
    wanted = Counter(fate[1] for _, fate in CASES if fate[0] == "dlq")
    assert Counter(r.headers["tp.dlq.reason"].decode() for r in dead) == wanted
    by_offset = {(r.headers["tp.source.partition"], r.headers["tp.source.offset"]): r for r in dead}
    raw_by_value = {value: key for key, value, _ in records}
    for record in dead:
        assert record.value in raw_by_value, "a dead letter must carry the original bytes"
        assert record.key == raw_by_value[record.value]
        assert record.headers["tp.source.topic"] == raw.encode()
        assert record.headers["tp.feed"] == b"127.0.0.1/stocks"
        assert record.headers["tp.dlq.detail"]
    assert len(by_offset) == len(dead)


def test_invalid_rules_file_exits_2_listing_every_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("events: [A, ZZ]\nmin_price: cheap\nsessions: all\n")
    env = {"PATH": "/usr/bin:/bin", "TICKPIPE_HOME": str(tmp_path), "FILTER_RULES": str(rules)}
    result = subprocess.run(
        [sys.executable, "-m", "tickpipe_cli", "processor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{rules}:1: events[1]:" in result.stderr
    assert f"{rules}:2: min_price:" in result.stderr
    assert f"{rules}:3: sessions: unknown rule" in result.stderr
