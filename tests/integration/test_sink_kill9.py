"""Exactly once under crashes: kill -9 the sink process 10 times while it loads 500k rows.

Proof obligations (issue 6): nothing lost, nothing doubled (count == count of distinct keys == rows
published), and the rollups saw every row once (1-minute bar volume == raw volume == published
volume). The sink is a separate process on its own chDB folder, so the checks go through its
read-only query endpoint: the same path `tickpipe query` takes while a sink runs.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bench.sink_events import second_aggregates
from tests.conftest import KafkaHandle
from tests.support import wait_for
from tickpipe.process import stop_pid
from tickpipe_clickhouse.query.client import EndpointClient
from tickpipe_clickhouse.query.endpoint import discovery_path

pytestmark = pytest.mark.integration

ROWS = 500_000
KILLS = 10
PARTITIONS = 4


def publish(kafka: KafkaHandle, topic: str) -> float:
    """Produce ROWS distinct second aggregates; returns their total volume."""
    producer = Producer(kafka.config(**{"enable.idempotence": "true", "linger.ms": "20"}))
    volume = 0.0
    for key, value in second_aggregates(ROWS):
        volume += json.loads(value)["volume"]
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    return volume


class SinkProcess:
    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tickpipe_cli", "sink"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        stop_pid(self.proc.pid, timeout=30)
        return self.proc.wait(5)


@pytest.fixture
def sink_process(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], SinkProcess]]:
    started: list[SinkProcess] = []

    def make(env: dict[str, str]) -> SinkProcess:
        sink = SinkProcess(env, tmp_path / "sink.log")
        started.append(sink)
        return sink

    yield make
    for sink in started:
        sink.stop()


def test_kill9_ten_times_during_500k_rows_loses_and_doubles_nothing(
    kafka: KafkaHandle,
    new_topic: Callable[..., str],
    tmp_path: Path,
    sink_process: Callable[[dict[str, str]], SinkProcess],
) -> None:
    topic = new_topic("filtered", partitions=PARTITIONS)
    published_volume = publish(kafka, topic)
    group = f"sink-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "chdb"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "TICKPIPE_HOME": str(tmp_path / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "FILTERED_TOPIC": topic,
        "CLICKHOUSE_DSN": f"chdb://{folder}",
        "CLICKHOUSE_DATABASE": "tp",
        "SINK_GROUP_ID": group,
        "SINK_INSTANCE_ID": "sink-under-test",  # static membership: a restart takes over at once
        "SINK_BATCH_ROWS": "20000",
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
    }
    watcher = Consumer(kafka.config(**{"group.id": group}))
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def committed() -> int:
        def ask() -> int | None:
            try:  # the group coordinator moves or loads now and then: ask again
                return sum(max(tp.offset, 0) for tp in watcher.committed(partitions, timeout=10)) + 1
            except KafkaException:
                return None

        return wait_for(ask, "the group's committed offsets", 60) - 1

    end = sum(watcher.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
    assert end == ROWS
    rng = random.Random(6)
    sink = sink_process(env)
    kills_mid_run = 0
    try:
        for _ in range(KILLS):
            before = committed()
            sink.start()
            wait_for(lambda b=before: committed() > b or not sink.alive(), "the sink to commit progress", 90)  # type: ignore[misc]
            assert sink.alive(), f"the sink exited: {sink.log.read_text()[-2000:]}"
            wait_for(lambda: True, "a random moment", timeout=1, interval=rng.uniform(0.0, 0.4))
            kills_mid_run += committed() < ROWS
            sink.kill9()
        assert kills_mid_run >= KILLS - 1, "the run finished before the kills: make batches smaller"

        sink.start()
        wait_for(lambda: committed() == ROWS, "every offset committed after the last restart", 120)
        client = wait_for(lambda: _endpoint(folder), "the sink's query endpoint", 30)
        count, distinct, raw_volume = client.query(
            "SELECT count(), uniqExact(symbol, timestamp), sum(volume) FROM aggregates"
        ).result_rows[0]
        levels = client.query("SELECT seconds, sum(volume) FROM bars GROUP BY seconds").result_rows
        day_volume = client.query("SELECT sum(volume) FROM ohlcv_1d").result_rows[0][0]
        assert int(count) == ROWS, "rows lost or doubled"
        assert int(distinct) == ROWS, "a key was written twice"
        assert float(raw_volume) == published_volume
        assert sorted(int(s) for s, _ in levels) == [60, 300, 3600, 86400]
        for seconds, volume in levels:
            assert float(volume) == float(raw_volume), f"bars of {seconds} s lost or doubled a replayed block"
        assert float(day_volume) == float(raw_volume)
        assert sink.stop() == 0, "SIGTERM should stop the sink cleanly"
    finally:
        watcher.close()
    replays = sink.log.read_text().count("redoing a pending batch")
    print(f"kills={KILLS} mid-run={kills_mid_run} pending batches redone={replays}")


def _endpoint(folder: Path) -> EndpointClient | None:
    try:
        info = json.loads(discovery_path(folder).read_text())
    except (OSError, ValueError):
        return None
    return EndpointClient(info["url"], info["token"])
