"""The producer as a real process: simulator (official client) -> producer -> real Kafka, CSV in moto S3."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from tests.conftest import KafkaHandle, S3Handle
from tests.support import wait_for
from tickpipe.process import free_port
from tickpipe_demo.monitor import scrape, total
from tickpipe_demo.services import ServiceProcess
from tickpipe_simulator.testing import SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

ALL_STOCKS = "channel,symbol\nA,*\nAM,*\nT,*\nQ,*\n"


class ProducerRun:
    """A producer process plus what a test needs around it."""

    def __init__(self, service: ServiceProcess, topic: str, kafka: KafkaHandle, sim: SimulatorProcess):
        self.service, self.topic, self.kafka, self.sim = service, topic, kafka, sim

    def metric(self, name: str, **labels: str) -> float:
        return total(scrape(self.service.metrics_url), name, **labels)

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.service.log_file.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def consume_all(self, expected: int, timeout: float = 30.0) -> list[Any]:
        consumer = Consumer(
            self.kafka.config(
                **{
                    "group.id": f"check-{uuid.uuid4().hex[:8]}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": "false",
                }
            )
        )
        consumer.subscribe([self.topic])
        messages: list[Any] = []
        try:
            wait_for(
                lambda: _pull(consumer, messages) >= expected, f"{expected} messages in {self.topic}", timeout
            )
            _pull(consumer, messages, wait=1.0)  # anything beyond `expected` would be a duplicate
        finally:
            consumer.close()
        return messages


def _pull(consumer: Consumer, into: list[Any], wait: float = 0.2) -> int:
    for message in consumer.consume(num_messages=10_000, timeout=wait):
        assert message.error() is None, message.error()
        into.append(message)
    return len(into)


@pytest.fixture
def start_producer(
    kafka: KafkaHandle, s3: S3Handle, bucket: str, new_topic: Callable[..., str], tmp_path: Path
) -> Iterator[Callable[..., ProducerRun]]:
    """`start_producer(sim, csv_text, **env)` -> a running producer on a fresh topic."""
    runs: list[ProducerRun] = []

    def start(
        sim: SimulatorProcess,
        csv_text: str = ALL_STOCKS,
        api_key: str | None = None,
        topic: str | None = None,
        **env: str,
    ) -> ProducerRun:
        topic = topic or new_topic("raw")
        key = f"subs-{uuid.uuid4().hex[:6]}.csv"
        s3.client().put_object(Bucket=bucket, Key=key, Body=csv_text.encode())
        service_env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(tmp_path)),
            "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
            **s3.env(),
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "RAW_TOPIC": topic,
            "POLYGON_FEED": sim.feed,
            "POLYGON_SECURE": "false",
            "POLYGON_API_KEY": api_key or sim.api_key,
            "SUBSCRIPTIONS_URI": f"s3://{bucket}/{key}",
            "SUBSCRIPTIONS_POLL_SECONDS": "1",
            "RECONNECT_INITIAL_SECONDS": "0.2",
            **env,
        }
        log_file = tmp_path / f"producer-{topic}-{len(runs)}.log"
        service = ServiceProcess("producer", ["producer"], service_env, log_file, free_port()).start()
        run = ProducerRun(service, topic, kafka, sim)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.service.stop(15)


def _wait_healthy(run: ProducerRun) -> None:
    wait_for(lambda: not run.service.running() or scrape(run.service.metrics_url), "producer /metrics", 60)
    assert run.service.running(), run.service.tail()


def test_every_event_arrives_once_in_order_and_equals_the_ground_truth(
    tmp_path: Path, start_producer: Callable[..., ProducerRun]
) -> None:
    args = [
        "--seed",
        "3",
        "--symbols",
        "12",
        "--rate",
        "3000",
        "--session-seconds",
        "4",
        "--wait-for-subscriber",
    ]
    with SimulatorProcess(tmp_path, *args) as sim:
        run = start_producer(sim)
        _wait_healthy(run)
        stats = sim.wait_stats(lambda s: s["feed"]["finished"], "the simulated session to end", 60)
        sent = stats["totals"]["events_sent_total"]
        wait_for(
            lambda: run.metric("tickpipe_producer_events_produced_total") >= sent, f"{sent} events produced"
        )
        assert run.service.stop(30) == 0, run.service.tail()
        messages = run.consume_all(sent)

    assert len(messages) == sent, "every event exactly once: no loss, no duplicate"
    events = [orjson.loads(m.value()) for m in messages]
    conn = stats["connections"][0]
    expected = list(
        session_events(
            spec_from_stats(stats), conn["first_second_ms"], conn["last_complete_second_ms"] + 1000
        )
    )
    assert Counter(orjson.dumps(e) for e in events) == Counter(orjson.dumps(e) for e in expected)

    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message, event in zip(messages, events, strict=True):
        assert message.key().decode() == event["sym"]
        headers = dict(message.headers() or [])
        assert int(headers["tp.received_ns"]) > 1_600_000_000 * 10**9
        assert headers["tp.feed"] == f"{sim.feed}/stocks".encode()
        per_key[event["sym"]].append(event)
    for symbol, symbol_events in per_key.items():
        wanted = [e for e in expected if e["sym"] == symbol]
        assert symbol_events == wanted, f"{symbol}: Kafka order differs from the order sent"


def test_csv_edit_in_s3_changes_subscriptions_without_reconnect_and_bad_edit_is_rejected(
    tmp_path: Path, start_producer: Callable[..., ProducerRun], s3: S3Handle, bucket: str
) -> None:
    with SimulatorProcess(tmp_path, "--symbols", "20", "--rate", "500") as sim:
        run = start_producer(sim, "channel,symbol\nA,AAPL\nT,AAPL\n")
        _wait_healthy(run)
        first = wait_for(lambda: _open_conn(sim, ["A.AAPL", "T.AAPL"]), "the initial subscriptions")
        key = os.path.basename(run.service.env["SUBSCRIPTIONS_URI"])

        s3.client().put_object(Bucket=bucket, Key=key, Body=b"channel,symbol\nA,MSFT\nT,AAPL\nQ,msft\n")
        edited = ["A.MSFT", "Q.MSFT", "T.AAPL"]
        changed = wait_for(lambda: _open_conn(sim, edited), "the edit to take effect", 15)
        assert changed["id"] == first["id"], "applied on the live connection, not by reconnecting"
        assert run.metric("tickpipe_producer_reconnects_total") == 0

        bad = b"channel,symbol\nA,MSFT\nZZ,AAPL\nT,\n"
        s3.client().put_object(Bucket=bucket, Key=key, Body=bad)
        wait_for(
            lambda: run.metric("tickpipe_producer_subscription_reloads_total", result="rejected") >= 1,
            "the bad edit to be rejected",
        )
        assert _open_conn(sim, edited), "the last good set stays in force"
        rejected = [r for r in run.log_records() if r["msg"].startswith("subscriptions CSV rejected")]
        assert rejected
        problems = " | ".join(rejected[-1]["problems"])
        assert "line 3" in problems
        assert "'ZZ'" in problems
        assert "line 4" in problems
        assert run.service.stop(30) == 0


def _open_conn(
    sim: SimulatorProcess, topics: list[str], other_than: int | None = None
) -> dict[str, Any] | None:
    """The open connection subscribed to exactly `topics` (and not connection `other_than`)."""
    for conn in sim.stats()["connections"]:
        if (
            conn["disconnected_at"] is None
            and conn["subscriptions"] == sorted(topics)
            and conn["id"] != other_than
        ):
            return dict(conn)
    return None


def test_reconnects_after_1011_resubscribes_and_reports_the_gap(
    tmp_path: Path, start_producer: Callable[..., ProducerRun]
) -> None:
    with SimulatorProcess(tmp_path, "--symbols", "10", "--rate", "500") as sim:
        run = start_producer(sim, "channel,symbol\nA,*\nT,AAPL\n")
        _wait_healthy(run)
        first = wait_for(lambda: _open_conn(sim, ["A.*", "T.AAPL"]), "the first session")
        sim.fault(action="close", code=1011)
        second = wait_for(
            lambda: _open_conn(sim, ["A.*", "T.AAPL"], other_than=first["id"]),
            "a new session with the same subscriptions",
        )
        assert second["id"] != first["id"]
        wait_for(lambda: run.metric("tickpipe_producer_gaps_total") >= 1, "the gap to be reported")
        assert run.metric("tickpipe_producer_reconnects_total") >= 1
        gaps = [r for r in run.log_records() if r["msg"].startswith("websocket gap")]
        assert gaps
        assert gaps[0]["topics"] == ["A.*", "T.AAPL"]
        assert gaps[0]["seconds"] >= 0
        assert run.service.stop(30) == 0


def test_rejected_key_exits_3_without_printing_the_key(
    tmp_path: Path, start_producer: Callable[..., ProducerRun]
) -> None:
    with SimulatorProcess(tmp_path) as sim:
        wrong = "wrong-" + uuid.uuid4().hex
        run = start_producer(sim, api_key=wrong)
        assert run.service.process is not None
        code = run.service.process.wait(60)
    log = run.service.log_file.read_text()
    assert code == 3, log[-2000:]
    assert "rejected" in log
    assert wrong not in log


def test_sigterm_loses_nothing_already_read(
    tmp_path: Path, start_producer: Callable[..., ProducerRun]
) -> None:
    with SimulatorProcess(tmp_path, "--symbols", "50", "--rate", "20000") as sim:
        run = start_producer(sim)
        _wait_healthy(run)
        wait_for(
            lambda: run.metric("tickpipe_producer_events_produced_total") >= 20_000, "the stream to flow", 60
        )
        run.service.signal(signal.SIGTERM)
        assert run.service.process is not None
        assert run.service.process.wait(30) == 0, run.service.tail()
    stopped = [r for r in run.log_records() if r["msg"] == "producer stopped"]
    assert stopped, run.service.tail()
    produced = stopped[-1]["events_produced"]
    assert produced >= 20_000
    messages = run.consume_all(produced)
    assert len(messages) == produced, "every event read before SIGTERM is in Kafka"


def test_restart_after_kill9_reports_the_gap_since_the_last_published_event(
    tmp_path: Path, start_producer: Callable[..., ProducerRun]
) -> None:
    with SimulatorProcess(tmp_path, "--symbols", "10", "--rate", "2000") as sim:
        first = start_producer(sim)
        _wait_healthy(first)
        wait_for(lambda: first.metric("tickpipe_producer_events_produced_total") >= 2000, "events to flow")
        first.service.kill()
        killed_at = time.time()
        second = start_producer(sim, topic=first.topic)
        _wait_healthy(second)
        wait_for(lambda: second.metric("tickpipe_producer_gaps_total") >= 1, "the restart gap to be reported")
        gap = next(r for r in second.log_records() if r["msg"].startswith("websocket gap"))
        assert second.service.stop(30) == 0
    gap_from = datetime.fromisoformat(gap["gap_from"].replace("Z", "+00:00")).timestamp()
    assert killed_at - 10 < gap_from <= killed_at, (
        "the gap starts at the last event the killed producer published"
    )
    assert gap["seconds"] > 0
