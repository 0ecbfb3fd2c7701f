"""Poison messages, then a valid trade, through the real processor and the real sink (separate
processes, a real Kafka broker, chDB): the trade reaches ClickHouse, every service is still running,
and each poison message is in a DLQ with the reason that names it.

The raw poison is what once stopped the processor for good or was stored wrong: a trade with an
extra key nested 1000 deep, a 5000-digit `tp.received_ns`, exchange 70000, a year-3000 trade, a
price of 1e308, a 900 KB symbol, a NUL in a symbol, `ts_ms = 1e15`. The filtered poison is what once
stopped the sink: rows the processor no longer lets through (written straight to FILTERED_TOPIC, as a
replay or an older writer would): one insert spanning 150 months (TOO_MANY_PARTITIONS) and a row at
`ts_ms = 1e15` (year 33658).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.conftest import KafkaHandle
from tests.integration.processor_harness import (
    RawRecord,
    RunningProcessor,
    produce_raw,
    read_topic,
    run_processor,
)
from tests.support import wait_for
from tickpipe.process import log_tail, spawn, stop_pid
from tickpipe_clickhouse.query.client import EndpointClient
from tickpipe_clickhouse.query.endpoint import discovery_path

pytestmark = pytest.mark.integration

NOW_MS = int(time.time() * 1000)
RECEIVED = str(NOW_MS * 1_000_000).encode()
MONTH_MS = 31 * 86_400_000


def _trade(**changes: object) -> dict[str, object]:
    return {"ev": "T", "sym": "AAPL", "x": 4, "p": 100.5, "s": 10, "t": NOW_MS - 60_000, "q": 7, **changes}


def _deep_trade() -> bytes:
    value = orjson.dumps(_trade())
    return value[:-1] + b',"extra":' + b'{"k":' * 1000 + b"1" + b"}" * 1000 + b"}"


# key -> (value, received header, the DLQ reason expected)
RAW_POISON: dict[bytes, tuple[bytes, bytes, str]] = {
    b"deep": (_deep_trade(), RECEIVED, "too_deep"),
    b"header": (orjson.dumps(_trade()), b"9" * 5000, "bad_header"),
    b"exchange": (orjson.dumps(_trade(x=70000)), RECEIVED, "out_of_range"),
    b"year3000": (orjson.dumps(_trade(t=32503680000000)), RECEIVED, "out_of_range"),
    b"price": (orjson.dumps(_trade(p=1e308)), RECEIVED, "out_of_range"),
    b"long_symbol": (orjson.dumps(_trade(sym="A" * 900_000)), RECEIVED, "bad_symbol"),
    b"nul_symbol": (orjson.dumps(_trade(sym="AA\x00PL")), RECEIVED, "bad_symbol"),
    b"ts_1e15": (orjson.dumps(_trade(t=10**15)), RECEIVED, "out_of_range"),
}


def _filtered_row(symbol: str, ts_ms: int, sequence: int) -> bytes:
    return orjson.dumps(
        {"ev": "T", "symbol": symbol, "ts_ms": ts_ms, "price": 1.5, "size": 2.0, "exchange": 4,
         "trade_id": None, "tape": None, "conditions": None, "sequence": sequence, "received_ns": None}
    )  # fmt: skip


@dataclass
class SinkProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], SinkProcess]]:
    started: list[SinkProcess] = []

    def start(env: dict[str, str]) -> SinkProcess:
        process = spawn([sys.executable, "-m", "tickpipe_cli", "sink"], tmp_path / "sink.log", env=env)
        started.append(SinkProcess(process, tmp_path / "sink.log"))
        return started[-1]

    yield start
    for running in started:
        if running.alive():
            stop_pid(running.process.pid, 30)


def test_poison_messages_are_dead_letters_and_the_valid_trade_after_them_is_stored(
    kafka: KafkaHandle,
    new_topic: Callable[..., str],
    tmp_path: Path,
    sink: Callable[[dict[str, str]], SinkProcess],
) -> None:
    raw = new_topic("raw", partitions=1)  # one partition: the valid trade comes after every poison
    filtered = new_topic("filtered", partitions=1)
    folder = tmp_path / "chdb"
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "TICKPIPE_HOME": str(tmp_path / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "RAW_TOPIC": raw,
        "FILTERED_TOPIC": filtered,
        "LOG_FORMAT": "json",
    }
    sink_env = {
        **base,
        "CLICKHOUSE_DSN": f"chdb://{folder}",
        "CLICKHOUSE_DATABASE": "tp",
        "SINK_GROUP_ID": f"sink-{uuid.uuid4().hex[:8]}",
        "SINK_BATCH_SECONDS": "0.3",
        "SINK_RETRY_MAX_SECONDS": "1",
        "METRICS_PORT": "0",
    }
    sink_process = sink(sink_env)
    with run_processor(
        kafka.bootstrap,
        raw,
        filtered,
        tmp_path,
        f"proc-{uuid.uuid4().hex[:8]}",
        extra_env={"PROCESSOR_MAX_MESSAGE_BYTES": "1000000"},  # so the 900 KB symbol meets its own check
    ) as processor:
        records: list[RawRecord] = [
            (key, value, [("tp.received_ns", header)]) for key, (value, header, _) in RAW_POISON.items()
        ]
        records.append((b"GOOD", orjson.dumps(_trade(sym="GOOD", p=123.25)), [("tp.received_ns", RECEIVED)]))
        produce_raw(kafka.bootstrap, raw, records)

        sink_poison = [_filtered_row("SPAN", n * MONTH_MS + 86_400_000, n) for n in range(150)]
        sink_poison.append(_filtered_row("FAR", 10**15, 1))
        produce_raw(kafka.bootstrap, filtered, [(b"x", value, []) for value in sink_poison])

        client = wait_for(lambda: _endpoint(folder), "the sink's query endpoint", 120)

        def stored(symbol: str) -> int:
            rows = client.query(f"SELECT count() FROM trades WHERE symbol = '{symbol}'").result_rows
            return int(rows[0][0])

        wait_for(lambda: stored("GOOD") == 1 or not _alive(processor, sink_process), "the valid trade", 180)
        assert _alive(processor, sink_process), _tails(processor, sink_process)
        price, exchange = client.query(
            "SELECT price, exchange FROM trades WHERE symbol = 'GOOD'"
        ).result_rows[0]
        assert (float(price), int(exchange)) == (123.25, 4)

        dead = wait_for(
            lambda: (
                found if len(found := read_topic(kafka.bootstrap, f"{raw}.dlq")) >= len(RAW_POISON) else None
            ),
            "every raw poison message in the processor's DLQ",
            60,
        )
        reasons = {record.key: record.headers["tp.dlq.reason"].decode() for record in dead}
        assert reasons == {key: reason for key, (_, _, reason) in RAW_POISON.items()}
        for record in dead:
            assert record.value == RAW_POISON[record.key or b""][0], "a dead letter keeps its value"

        # The sink: 150 months in one batch are stored month by month; the year-33658 row is
        # stored (ClickHouse clamps it) or dead-lettered, never retried forever or fatal.
        wait_for(lambda: stored("SPAN") == 150, "the 150-month batch stored", 120)
        sink_dead = read_topic(kafka.bootstrap, f"{filtered}.dlq")
        assert stored("FAR") + len(sink_dead) == 1
        health = processor.health()
        assert health is not None, processor.tail()
        assert health["ok"], processor.tail()
        assert _alive(processor, sink_process), _tails(processor, sink_process)
        assert "month by month" in sink_process.log.read_text(), "the 150 months did meet TOO_MANY_PARTITIONS"


def _alive(processor: RunningProcessor, sink: SinkProcess) -> bool:
    return processor.alive() and sink.alive()


def _discovery(folder: Path) -> dict[str, object] | None:
    try:
        found = json.loads(discovery_path(folder).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _endpoint(folder: Path) -> EndpointClient | None:
    info = _discovery(folder)
    return EndpointClient(str(info["url"]), str(info["token"])) if info else None


def _tails(processor: RunningProcessor, sink: SinkProcess) -> str:
    return f"processor:\n{processor.tail()}\nsink:\n{log_tail(sink.log, 40)}"
