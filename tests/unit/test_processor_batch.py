"""The batch step against fake messages and a list-backed producer (the loop adds Kafka)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tickpipe_processor.batch import BatchStep
from tickpipe_processor.filters import RuleFilter
from tickpipe_processor.rules import parse_rules

TRADE = {"ev": "T", "sym": "AAPL", "x": 4, "p": 100.5, "s": 10, "t": 1732550400000, "q": 1}


@dataclass
class FakeMessage:
    _value: bytes | None
    _headers: list[tuple[str, bytes]] | None = None
    _offset: int = 0
    _partition: int = 0
    _key: bytes | None = b"AAPL"
    _error: Any = None

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def error(self) -> Any:
        return self._error


@dataclass
class Produced:
    records: list[tuple[str, bytes, Any, Any]] = field(default_factory=list)

    def __call__(self, topic: str, value: bytes, key: Any = None, *, headers: Any = None) -> None:
        self.records.append((topic, value, key, headers))


def step(rules: str = "", max_bytes: int = 1000) -> BatchStep:
    return BatchStep(RuleFilter(parse_rules(rules)), "raw", "filtered", "raw.dlq", max_bytes)


def message(
    raw: Any, offset: int = 0, received: bytes | None = b"1732550400000000000", **kw: Any
) -> FakeMessage:
    value = raw if isinstance(raw, bytes) or raw is None else orjson.dumps(raw)
    headers = [("tp.feed", b"socket.polygon.io/stocks")]
    if received is not None:
        headers.append(("tp.received_ns", received))
    return FakeMessage(value, headers, offset, **kw)


def test_valid_events_are_produced_keyed_by_symbol_with_received_ns() -> None:
    out = Produced()
    report = step().run([message(TRADE), message({**TRADE, "q": 2}, 1)], out)
    assert (report.consumed, report.produced) == (2, 2)
    topic, value, key, headers = out.records[0]
    assert (topic, key, headers) == ("filtered", "AAPL", None)
    assert orjson.loads(value)["received_ns"] == 1732550400000000000


def test_missing_receive_header_gives_null_and_a_bad_one_a_dead_letter() -> None:
    out = Produced()
    report = step().run([message(TRADE, received=None), message(TRADE, 1, received=b"soon")], out)
    assert orjson.loads(out.records[0][1])["received_ns"] is None
    topic, _value, _key, headers = out.records[1]
    assert topic == "raw.dlq"
    assert dict(headers)["tp.dlq.reason"] == b"bad_header"
    assert report.dead == {"bad_header": 1}


def test_dead_letters_keep_original_bytes_key_and_headers_and_say_where_from() -> None:
    out = Produced()
    bad = b'{"ev":"T","sym":"AAPL","x":4,"p":"cheap","s":10,"t":1}'
    step().run([message(bad, offset=41, _partition=3)], out)
    topic, value, key, headers = out.records[0]
    assert (topic, value, key) == ("raw.dlq", bad, b"AAPL")
    h = dict(headers)
    assert h["tp.feed"] == b"socket.polygon.io/stocks"
    assert h["tp.received_ns"] == b"1732550400000000000"
    assert h["tp.dlq.reason"] == b"wrong_type"
    assert b"p" in h["tp.dlq.detail"]
    assert (h["tp.source.topic"], h["tp.source.partition"], h["tp.source.offset"]) == (b"raw", b"3", b"41")


def test_oversized_and_tombstones_go_to_the_dlq() -> None:
    out = Produced()
    report = step(max_bytes=100).run([message(b"{" + b" " * 200 + b"}"), message(None, 1)], out)
    assert report.dead == {"oversized": 1, "malformed_json": 1}
    assert out.records[1][1] == b""


def test_filtered_events_are_counted_per_rule_and_not_produced() -> None:
    out = Produced()
    batch = [message(TRADE), message({**TRADE, "sym": "TSLA"}, 1), message({**TRADE, "s": 1}, 2)]
    report = step("symbols: {deny: [TSLA]}\nmin_volume: 5").run(batch, out)
    assert report.filtered == {"symbol_deny": 1, "min_volume": 1}
    assert report.produced == 1
    assert len(out.records) == 1


def test_kafka_events_in_a_batch_are_reported_not_processed() -> None:
    out = Produced()
    report = step().run([FakeMessage(None, _error="partition EOF"), message(TRADE)], out)
    assert report.errors == ["partition EOF"]
    assert report.consumed == 1


def test_memory_is_per_partition_and_forgotten_when_partitions_move() -> None:
    s = step("dedupe: {window_seconds: 60}")
    out = Produced()
    s.run([message(TRADE, _partition=0), message(TRADE, 1, _partition=0)], out)
    assert len(out.records) == 1
    s.commit()
    s.forget([0])
    s.run([message(TRADE, 2, _partition=0)], out)
    assert len(out.records) == 2
