"""Gap repair end to end at the raw topic: simulator -> producer (killed for a while) -> Kafka, and
`tickpipe repair` filling the gap from the simulator's REST API. Afterwards RAW_TOPIC holds every
event the simulator sent during the session, each exactly once (trades, quotes, second and minute
aggregates), the restored ones marked `tp.source=rest`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from tests.conftest import KafkaHandle
from tests.integration.test_producer import ProducerRun, _wait_healthy, start_producer  # noqa: F401
from tests.support import wait_for
from tickpipe.process import free_port
from tickpipe_demo.monitor import KafkaWatcher
from tickpipe_demo.services import ServiceProcess
from tickpipe_history.repair_events import identity
from tickpipe_simulator.testing import SimulatorProcess
from tickpipe_simulator.truth import session_events, spec_from_stats

pytestmark = pytest.mark.integration

TOPICS = "channel,symbol\nA,*\nAM,*\nT,*\nQ,*\n"
FEED_GAPS = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
rows = client.query("SELECT state, rows_restored, why FROM tickpipe.feed_gaps FINAL").result_rows
print(json.dumps([list(r) for r in rows]))
"""


def _all_messages(kafka: KafkaHandle, topic: str) -> list[Any]:
    consumer = Consumer(
        kafka.config(
            **{
                "group.id": f"check-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": "false",
                "isolation.level": "read_committed",
                "enable.partition.eof": "true",
            }
        )
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.subscribe([topic])
    messages: list[Any] = []
    done: set[int] = set()
    try:
        while len(done) < len(partitions):
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                done.add(message.partition() or 0)
                continue
            messages.append(message)
    finally:
        consumer.close()
    return messages


def test_a_killed_producer_s_gap_is_filled_from_rest_exactly_once(
    tmp_path: Path,
    kafka: KafkaHandle,
    new_topic: Callable[..., str],
    start_producer: Callable[..., ProducerRun],  # noqa: F811
) -> None:
    gaps_topic = new_topic("gaps", partitions=1)
    states_topic = new_topic("gap-states", partitions=1)
    # REST trails the websocket by 8 s: the repair must wait until REST has the whole gap.
    args = ["--symbols", "5", "--rate", "400", "--session-seconds", "50", "--rest-lag-seconds", "8"]
    with SimulatorProcess(tmp_path, *args) as sim:
        first = start_producer(sim, TOPICS, FEED_GAPS_TOPIC=gaps_topic)
        _wait_healthy(first)
        wait_for(
            lambda: first.metric("tickpipe_producer_events_produced_total") >= 3000, "events to flow", 60
        )
        first.service.kill()
        at_kill = sim.stats()["feed"]["seconds_generated"]
        wait_for(lambda: sim.stats()["feed"]["seconds_generated"] >= at_kill + 6, "6 s of feed missed", 30)
        second = start_producer(sim, TOPICS, topic=first.topic, FEED_GAPS_TOPIC=gaps_topic)
        _wait_healthy(second)
        wait_for(lambda: second.metric("tickpipe_producer_gaps_total") >= 1, "the restart gap", 30)
        flowing = second.metric("tickpipe_producer_events_produced_total")
        wait_for(
            lambda: second.metric("tickpipe_producer_events_produced_total") >= flowing + 1000,
            "events again",
            30,
        )
        sim.fault(action="close", code=1011)  # the server drops the session: a second, short gap
        wait_for(lambda: second.metric("tickpipe_producer_gaps_total") >= 2, "the 1011 gap", 30)
        repair_env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(tmp_path)),
            "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "RAW_TOPIC": first.topic,
            "FEED_GAPS_TOPIC": gaps_topic,
            "POLYGON_API_KEY": sim.api_key,
            "POLYGON_REST_URL": sim.base_url,
            "REPAIR_REST_LAG_SECONDS": "0",
            "REPAIR_MARGIN_SECONDS": "3",
            "REPAIR_GROUP_ID": f"repair-{uuid.uuid4().hex[:6]}",
            "REPAIR_TRANSACTIONAL_ID": f"repair-{uuid.uuid4().hex[:6]}",
            "GAP_STATES_TOPIC": states_topic,
        }
        # The sink stores each gap's state in feed_gaps (its chDB folder: nobody else opens it).
        sink_env = {
            **repair_env,
            "FILTERED_TOPIC": new_topic("filtered", partitions=1),
            "SINK_GROUP_ID": f"sink-{uuid.uuid4().hex[:6]}",
            "CLICKHOUSE_DSN": f"chdb://{tmp_path / 'chdb'}",
        }
        sink = ServiceProcess("sink", ["sink"], sink_env, tmp_path / "sink.log", free_port()).start()
        repair = ServiceProcess(
            "repair", ["repair"], repair_env, tmp_path / "repair.log", free_port()
        ).start()
        try:
            stats = sim.wait_stats(lambda s: s["feed"]["finished"], "the session's end", timeout=120)

            def repaired() -> bool:
                assert repair.running(), repair.log_file.read_text()[-3000:]
                return repair.log_file.read_text().count('"gap repaired"') >= 2

            wait_for(repaired, "both gaps to be repaired", 120)
            total_sent = stats["totals"]["events_sent_total"]
            wait_for(
                lambda: (
                    second.metric("tickpipe_producer_events_produced_total")
                    >= stats["connections"][-1]["events_sent_total"]
                ),
                "the second producer to publish all it received",
                60,
            )
            assert total_sent > 0
            watcher = KafkaWatcher(kafka.bootstrap)
            try:
                wait_for(
                    lambda: watcher.unread(sink_env["SINK_GROUP_ID"], states_topic) == 0,
                    "the sink to store every gap state",
                    60,
                )
            finally:
                watcher.close()
        finally:
            assert repair.stop(30) == 0, repair.log_file.read_text()[-3000:]
            assert sink.stop(30) == 0, sink.log_file.read_text()[-3000:]
            second.service.stop(30)

    log = [json.loads(line) for line in repair.log_file.read_text().splitlines() if line.startswith("{")]
    done = [r for r in log if r.get("msg") == "gap repaired"]
    assert [r["why"] for r in done] == ["producer restart", "connection closed (code 1011)"]
    assert done[0]["events_restored"] > 0  # the 1011 gap may be covered by the first one's margin

    messages = _all_messages(kafka, first.topic)
    keys = Counter(identity(orjson.loads(m.value())) for m in messages)
    doubled = {k: n for k, n in keys.items() if n > 1}
    assert not doubled, f"{len(doubled)} events twice, e.g. {next(iter(doubled))}"
    restored = sum(1 for m in messages if ("tp.source", b"rest") in (m.headers() or []))
    assert restored == sum(r["events_restored"] for r in done)

    # Both states of each gap reached the sink; FINAL keeps the newest: `repaired`, its rows.
    gaps = subprocess.run(
        [sys.executable, "-c", FEED_GAPS, str(tmp_path / "chdb")], capture_output=True, text=True, timeout=60
    )
    assert gaps.returncode == 0, gaps.stderr[-2000:]
    assert sorted(json.loads(gaps.stdout)) == sorted(
        ["repaired", r["events_restored"], r["why"]] for r in done
    )

    spec = spec_from_stats(stats)
    first_second = stats["connections"][0]["first_second_ms"]
    end = stats["connections"][-1]["last_complete_second_ms"] + 1000
    expected = Counter(identity(e) for e in session_events(spec, first_second, end))
    assert set(keys) == set(expected), (
        f"missing {len(set(expected) - set(keys))}, extra {len(set(keys) - set(expected))}"
    )
