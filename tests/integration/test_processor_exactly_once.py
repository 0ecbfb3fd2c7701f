"""Exactly once on a real broker: kill -9 in the middle of a 200k-message run, restart, stop that
one with SIGTERM mid-run too (exit 0), restart, and the output plus the DLQ hold every input
exactly once, compared by content."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaException

from tests.conftest import KafkaHandle
from tests.integration.processor_harness import (
    RawRecord,
    all_committed,
    committed_offsets,
    end_offsets,
    not_yet,
    produce_raw,
    read_topic,
    run_processor,
)
from tests.support import wait_for
from tickpipe.contract import dlq_topic

pytestmark = pytest.mark.integration

MESSAGES = 200_000
BAD_EVERY = 997
SYMBOLS = [f"S{i:02d}" for i in range(40)]
START_MS = 1_732_546_800_000


def raw_value(n: int) -> bytes:
    if n % BAD_EVERY == BAD_EVERY - 1:
        return b'{"ev":"T","sym":"S00","p":' + str(n).encode()  # truncated JSON: a dead letter
    return orjson.dumps(
        {"ev": "T", "sym": SYMBOLS[n % len(SYMBOLS)], "x": 4, "p": 100 + n % 50, "s": 1 + n % 7,
         "t": START_MS + n, "q": n}
    )  # fmt: skip


def expected_output(n: int) -> tuple[Any, ...]:
    """The normalised event for input n, written out independently of the processor's code."""
    event = {
        "ev": "T", "symbol": SYMBOLS[n % len(SYMBOLS)], "ts_ms": START_MS + n, "price": float(100 + n % 50),
        "size": 1 + n % 7, "exchange": 4, "trade_id": None, "tape": None, "conditions": None,
        "sequence": n, "received_ns": n,
    }  # fmt: skip
    return tuple(sorted(event.items()))


def raw_records() -> Iterator[RawRecord]:
    for n in range(MESSAGES):
        yield SYMBOLS[n % len(SYMBOLS)].encode(), raw_value(n), [("tp.received_ns", str(n).encode())]


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Messages committed by the group (asked again while the coordinator is still moving).

    Right after a kill -9 the group's offsets can be unstable: the killed instance's open
    transaction holds offsets until the broker aborts it (PROCESSOR_TRANSACTION_TIMEOUT_MS, 15 s,
    plus the broker's 10 s clean-up interval), and `committed()` times out meanwhile (KIP-447).
    """

    def attempt() -> tuple[int] | None:
        try:
            return (sum(committed_offsets(bootstrap, group, topic).values()),)
        except KafkaException as exc:
            if not_yet(exc.args[0]):
                return None
            raise

    return wait_for(attempt, "the group's committed offsets", timeout=90)[0]


def test_kill_9_mid_run_then_restart_is_exactly_once(
    kafka: KafkaHandle, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    raw, out = new_topic("raw"), new_topic("filtered")
    produce_raw(kafka.bootstrap, raw, raw_records())
    group = f"proc-{uuid.uuid4().hex[:8]}"
    env = {"PROCESSOR_BATCH_SIZE": "5000"}  # many transactions, so the kill lands between and inside them

    with run_processor(kafka.bootstrap, raw, out, tmp_path, group, "eos", env) as first:
        wait_for(
            lambda: not first.alive() or sum(end_offsets(kafka.bootstrap, out).values()) >= MESSAGES // 4,
            "a quarter of the output written",
            timeout=120,
        )
        assert first.alive(), first.tail()
        first.kill9()
    at_kill = committed_total(kafka.bootstrap, group, raw)
    assert at_kill < MESSAGES, "the first run finished before the kill; nothing was tested"

    with run_processor(kafka.bootstrap, raw, out, tmp_path, group, "eos", env) as second:
        wait_for(
            lambda: not second.alive() or sum(end_offsets(kafka.bootstrap, out).values()) >= MESSAGES // 2,
            "half of the output written",
            timeout=120,
        )
        assert second.terminate() == 0, second.tail()

    with run_processor(kafka.bootstrap, raw, out, tmp_path, group, "eos", env) as third:
        wait_for(
            lambda: not third.alive() or all_committed(kafka.bootstrap, group, raw),
            "all input committed after the second restart",
            timeout=150,
        )
        assert third.alive(), third.tail()
        assert third.terminate() == 0, third.tail()

    bad = {n for n in range(MESSAGES) if n % BAD_EVERY == BAD_EVERY - 1}
    output = Counter(tuple(sorted(record.json().items())) for record in read_topic(kafka.bootstrap, out))
    duplicates = [event for event, count in output.items() if count > 1]
    assert not duplicates, f"{len(duplicates)} events written twice, e.g. {duplicates[:2]}"
    expected = {expected_output(n) for n in range(MESSAGES) if n not in bad}
    assert len(output) == len(expected)
    assert set(output) == expected

    dead = read_topic(kafka.bootstrap, dlq_topic(raw))
    dead_inputs = Counter(int(record.headers["tp.received_ns"]) for record in dead)
    assert set(dead_inputs) == bad
    assert max(dead_inputs.values()) == 1, "a dead letter was written twice"
    assert all(record.value == raw_value(int(record.headers["tp.received_ns"])) for record in dead)
