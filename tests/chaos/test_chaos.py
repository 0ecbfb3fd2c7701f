"""Chaos: kill -9 every service (the gap repair included) repeatedly, restart the broker, break the
websocket, fail ClickHouse writes for a while — then prove ClickHouse holds every event of the
simulated session, nothing twice: what the websocket lost in the gaps was restored from REST.

Size: `CHAOS_SIZE=ci` (default; a reduced run that fits the CI budget) or `CHAOS_SIZE=full` (a
1M-event session, 10 kills per service, a 30 s ClickHouse outage). The run's figures are printed
as JSON and written to `$CHAOS_REPORT` when set (docs/reliability.md quotes the last full run).

What is checked:
- ClickHouse holds every event of the simulator's ground truth for the subscribed channels over
  the whole session, exactly once: the events the websocket never delivered (before the producer
  could connect, between sessions, and those a killed producer had read but not delivered) came
  back through `tickpipe repair` from REST. Events REST cannot serve (a subscribed channel it has
  no endpoint for; none in this subscription set) and events after the last session would be
  counted apart, by name; the run fails if anything else is missing;
- every event the simulator wrote to a websocket session that ended by itself (1011 close,
  max_connections eviction, the end of the run) is in RAW_TOPIC from the websocket itself;
- RAW_TOPIC (read_committed: a killed repair's aborted transaction does not count) holds nothing
  outside the ground truth, and nothing twice;
- FILTERED_TOPIC (read_committed) equals RAW_TOPIC event for event (the rules keep everything);
- ClickHouse equals FILTERED_TOPIC row for row; rollup volumes equal the raw sums;
- the producer reported a websocket gap for every session after the first, and `feed_gaps` (the
  sink writes it from the repair's gap states) shows each gap repaired, its rows restored adding
  up to the events marked `tp.source=rest` in RAW_TOPIC.

Producer kills are scheduled to end 8 s before the session does, so that the producer is usually
back before the feed ends; when it is not (a slow restart on a loaded machine), the simulator still
accepts the connection after its session, so the last gap is closed and published (and repaired)
then. A minute bar whose minute was still running at the session's end was never sent on the
websocket; REST serves it, and a gap ending after the session restores it: those are counted apart.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.chaos.pipeline import Pipeline, service_env
from tests.chaos.verify import (
    clickhouse_keys,
    decode,
    normalized_key,
    query_rows,
    raw_key,
    read_records,
    read_topic,
    sent_per_connection,
    session_truth,
)
from tests.conftest import S3Handle
from tests.support import wait_for
from tickpipe import contract
from tickpipe.contract import dlq_topic
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port
from tickpipe_clickhouse.sink.faults import CLICKHOUSE_DOWN
from tickpipe_demo.monitor import KafkaWatcher, scrape
from tickpipe_history.repair_events import CHANNEL_DATASET
from tickpipe_local.kafka_broker import KafkaBroker
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration

TOPICS = ["A.*", "AM.*", "T.*", "Q.*"]
SUBSCRIPTIONS = "channel,symbol\n" + "".join(t.replace(".", ",") + "\n" for t in TOPICS)
CLICKHOUSE_FAULT = CLICKHOUSE_DOWN
BROKER_START_SECONDS = 180  # a deadline, not a wait: a JVM start on a shared 2-core machine can take minutes


@dataclass(frozen=True)
class ChaosSize:
    rate: int  # trades + quotes per second
    session_seconds: int
    kills_per_service: int
    clickhouse_outage_seconds: float
    symbols: int

    @classmethod
    def from_env(cls) -> ChaosSize:
        if os.environ.get("CHAOS_SIZE", "ci") == "full":
            return cls(
                rate=19_000,
                session_seconds=50,
                kills_per_service=10,
                clickhouse_outage_seconds=30,
                symbols=100,
            )
        return cls(
            rate=5_000, session_seconds=24, kills_per_service=3, clickhouse_outage_seconds=5, symbols=40
        )


def _schedule(size: ChaosSize, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after the session starts, action), spread over the session, the outage in the middle."""
    span = size.session_seconds - 2
    actions = [
        (rng.uniform(1, span if name != "producer" else size.session_seconds - 8), f"kill:{name}")
        for name in ("producer", "processor", "sink", "repair")
        for _ in range(size.kills_per_service)
    ]
    actions += [
        (span * 0.30, "broker_restart"),
        (span * 0.15, "ws_1011"),
        (span * 0.75, "ws_evict"),
        (span * 0.50, "clickhouse_down"),
    ]
    return sorted(actions)


@pytest.mark.timeout(900)  # the session, the repair of its gaps and a full recount; a few minutes
def test_chaos_nothing_lost_after_kafka_and_nothing_twice(
    tmp_path: Path, s3: S3Handle, bucket: str, request: pytest.FixtureRequest
) -> None:
    size = ChaosSize.from_env()
    rng = random.Random(20261123)
    broker = KafkaBroker(tmp_path / "kafka").start(BROKER_START_SECONDS)
    raw, filtered = "chaos-raw", "chaos-filtered"
    ensure_topics(
        {"bootstrap.servers": broker.bootstrap}, [raw, filtered, dlq_topic(raw), dlq_topic(filtered)]
    )
    s3.client().put_object(Bucket=bucket, Key="subs.csv", Body=SUBSCRIPTIONS.encode())
    fault_dir = tmp_path / "faults"
    fault_dir.mkdir()
    port, api_key = free_port(), "chaos-" + secrets.token_hex(6)
    sim_args = [
        "--seed",
        "5",
        "--symbols",
        str(size.symbols),
        "--rate",
        str(size.rate),
        "--session-seconds",
        str(size.session_seconds + 4),  # + the producer's first reconnect
        "--port",
        str(port),
    ]
    report: dict[str, Any] = {"size": size.__dict__}
    try:
        # The services start first and the simulator's clock at its launch, so its event times are
        # the wall clock, as Polygon's are: the repair's windows are wall-clock times. (With the
        # clock started on the first subscription, the events would be as old as the services'
        # start-up, and each gap's window would miss that much of it.)
        env = service_env(
            {
                **s3.env(),
                "HOME": os.environ.get("HOME", str(tmp_path)),
                "TICKPIPE_HOME": str(tmp_path / "home"),
            },
            bootstrap=broker.bootstrap,
            raw=raw,
            filtered=filtered,
            feed=f"127.0.0.1:{port}",
            api_key=api_key,
            rest_url=f"http://127.0.0.1:{port}",
            subscriptions=f"s3://{bucket}/subs.csv",
            clickhouse_dsn=f"chdb://{tmp_path / 'chdb'}",
            fault_dir=fault_dir,
        )
        pipeline = Pipeline(tmp_path, env)
        request.addfinalizer(pipeline.kill_all)  # also when an assertion below fails
        pipeline.start_all()

        def serving() -> bool:
            pipeline.supervise()
            return all(scrape(pipeline.services[n].metrics_url) for n in ("sink", "processor", "repair"))

        wait_for(serving, "the sink, the processor and the repair to start", 240, interval=0.5)
        with SimulatorProcess(tmp_path, *sim_args, api_key=api_key) as sim:

            def receiving() -> bool:
                pipeline.supervise()
                return any(c["events_sent_total"] for c in sim.stats()["connections"])

            wait_for(receiving, "the producer to receive events", 120, interval=0.2)
            started = time.monotonic()
            _run_schedule(pipeline, sim, broker, fault_dir, _schedule(size, rng), started, size)
            wait_for(
                lambda: sim.stats()["feed"]["finished"],
                "the simulated session to end",
                size.session_seconds + 120,
            )
            _settle(pipeline, broker.bootstrap, raw, filtered, env)
            report["exit_codes"] = pipeline.stop_all()
            stats = sim.stats()
        report["actions"] = Counter(a.what + (":" + a.target if a.target else "") for a in pipeline.actions)
        report.update(_verify(pipeline, stats, broker.bootstrap, raw, filtered, env))
    finally:
        broker.stop()
    print(json.dumps(report, indent=2, default=str))
    if os.environ.get("CHAOS_REPORT"):
        Path(os.environ["CHAOS_REPORT"]).write_text(json.dumps(report, indent=2, default=str) + "\n")


def _run_schedule(
    pipeline: Pipeline,
    sim: SimulatorProcess,
    broker: KafkaBroker,
    fault_dir: Path,
    schedule: list[tuple[float, str]],
    started: float,
    size: ChaosSize,
) -> None:
    outage_ends: float | None = None
    pending = list(schedule)
    while pending or outage_ends is not None:
        now = time.monotonic() - started
        while pending and pending[0][0] <= now:
            _, action = pending.pop(0)
            if action.startswith("kill:"):
                pipeline.kill(action.split(":", 1)[1])
            elif action == "broker_restart":
                pipeline.note("broker_restart")
                broker.restart(BROKER_START_SECONDS)
            elif action == "ws_1011":
                pipeline.note("ws_1011")
                sim.fault(action="close", code=1011)
            elif action == "ws_evict":
                pipeline.note("ws_evict")
                sim.fault(action="evict")
            elif action == "clickhouse_down":
                pipeline.note("clickhouse_down", detail=f"{size.clickhouse_outage_seconds} s")
                (fault_dir / CLICKHOUSE_FAULT).touch()
                outage_ends = now + size.clickhouse_outage_seconds
        if outage_ends is not None and now >= outage_ends:
            (fault_dir / CLICKHOUSE_FAULT).unlink()
            pipeline.note("clickhouse_up")
            outage_ends = None
        pipeline.supervise()
        time.sleep(0.1)  # the driver's tick: it paces actions, it does not wait for a result


def _settle(
    pipeline: Pipeline, bootstrap: str, raw: str, filtered: str, env: dict[str, str], timeout: float = 240.0
) -> None:
    """Wait until the repair has committed every gap, then the processor and the sink have consumed
    everything (supervising meanwhile). RAW_TOPIC and FILTERED_TOPIC hold transactions, whose commit
    markers count in the end offsets: what is left there is counted by reading (unread)."""
    watcher = KafkaWatcher(bootstrap)
    try:

        def drained() -> bool:
            pipeline.supervise()
            return (
                watcher.lag("tickpipe-repair", [env["FEED_GAPS_TOPIC"]]) == 0
                and watcher.unread("tickpipe-processor", raw) == 0
                and watcher.unread("tickpipe-sink", filtered) == 0
                and watcher.unread("tickpipe-sink", env["GAP_STATES_TOPIC"]) == 0
            )

        wait_for(drained, "the repair, the processor and the sink to catch up", timeout, interval=0.5)
    finally:
        watcher.close()


def _verify(
    pipeline: Pipeline, stats: dict[str, Any], bootstrap: str, raw: str, filtered: str, env: dict[str, str]
) -> dict[str, Any]:
    # A producer that was killed, or exited on its own (a delivery timeout while the broker was
    # down is fatal by design), loses what it had read and not delivered: its next one reports the
    # gap and the repair restores those events from REST.
    kills = [a.at for a in pipeline.actions if a.what == "kill" and a.target == "producer"]
    kills += [
        a.at - 4 for a in pipeline.actions if a.what == "restart_after_exit" and a.target == "producer"
    ]  # the supervisor notices an exit up to a few seconds late on a loaded machine
    sent = sent_per_connection(stats)
    records = read_records(bootstrap, raw)  # read_committed: an aborted repair does not count
    raw_keys = Counter(raw_key(event) for event in decode([value for value, _ in records]))
    assert max(raw_keys.values(), default=1) == 1, "an event is in RAW_TOPIC twice"
    from_rest = Counter(
        raw_key(orjson.loads(value)) for value, headers in records if headers.get(contract.SOURCE) == b"rest"
    )
    live_keys = raw_keys - from_rest
    lost_in_kills = 0
    sessions: list[dict[str, Any]] = []
    for conn in stats["connections"]:
        keys = sent.get(conn["id"], [])
        missing = [key for key in keys if key not in live_keys]
        # A session the producer itself ended (no close frame: killed; 1000: it shut down, e.g. on a
        # fatal delivery timeout while the broker was away) may lose what it had read and not
        # delivered; one the server ended (1011, an eviction) while the producer ran must not.
        cut_by_kill = conn["close_code"] in (None, 1000, 1006) or any(
            conn["connected_at"] - 1 <= at <= (conn["disconnected_at"] or time.time()) + 1 for at in kills
        )
        sessions.append(
            {
                "id": conn["id"],
                "sent": len(keys),
                "missing_from_the_websocket": len(missing),
                "cut_by_kill": cut_by_kill,
                "close": conn["close_code"],
                "seconds": round((conn["disconnected_at"] or time.time()) - conn["connected_at"], 1),
            }
        )
        if cut_by_kill:  # by a kill or the producer's own end
            lost_in_kills += len(missing)
        else:
            assert not missing, (
                f"session {conn['id']} (closed {conn['close_code']}) lost {len(missing)} events"
            )

    # The ground truth: every event of the subscribed channels over the whole session.
    truth = session_truth(stats, TOPICS)
    # A minute bar is sent when its minute ends; the minute running when the session ended never
    # ended on the websocket, but REST serves it (a gap ending after the session's end restores it,
    # as it would restore the bar Polygon sends at the minute's close): counted apart, by name.
    spec = stats["session"]
    session_end_ms = int(spec["start_ms"]) + 1000 * int(spec["session_seconds"])
    beyond = set(raw_keys) - set(truth)
    past_the_end = {k for k in beyond if k in from_rest and k[0] == "AM" and k[2] + 60_000 > session_end_ms}
    assert beyond == past_the_end, (
        f"RAW_TOPIC holds {len(beyond - past_the_end)} events the simulator never generated, "
        f"e.g. {sorted(beyond - past_the_end)[:3]}"
    )
    truth |= dict.fromkeys(past_the_end, 0)  # stored once, like every other event
    last_sent_ms = max(
        (c["last_event_ms"] for c in stats["connections"] if c["events_sent_total"]), default=0
    )

    assert not read_topic(bootstrap, dlq_topic(raw)), "the processor dead-lettered valid input"
    filtered_keys = Counter(normalized_key(r) for r in decode(read_topic(bootstrap, filtered)))
    assert max(filtered_keys.values(), default=1) == 1, "an event is in FILTERED_TOPIC twice"
    assert set(filtered_keys) == set(raw_keys), "FILTERED_TOPIC differs from RAW_TOPIC"

    stored = clickhouse_keys(env)
    assert max(stored.values(), default=1) == 1, "a row is in ClickHouse twice"
    missing_rows = set(filtered_keys) - set(stored)
    extra_rows = set(stored) - set(filtered_keys)
    assert not missing_rows, (
        f"{len(missing_rows)} events missing from ClickHouse, e.g. {sorted(missing_rows)[:3]}"
    )
    assert not extra_rows, (
        f"{len(extra_rows)} rows in ClickHouse not in FILTERED_TOPIC, e.g. {sorted(extra_rows)[:3]}"
    )
    # ClickHouse against the ground truth: what is missing is accounted by cause, never hidden.
    absent = set(truth) - set(stored)
    not_repairable = {k for k in absent if k[0] not in CHANNEL_DATASET}
    after_last_session = {k for k in absent - not_repairable if truth[k] > last_sent_ms + 1000}
    lost = absent - not_repairable - after_last_session
    assert not lost, (
        f"{len(lost)} of {len(truth)} events of the session are not in ClickHouse although REST serves "
        f"them: by kind {dict(Counter(k[0] for k in lost))}, times {min(truth[k] for k in lost)}-"
        f"{max(truth[k] for k in lost)}, per second {sorted(Counter(truth[k] // 1000 for k in lost).items())}"
    )
    assert not after_last_session, (
        f"{len(after_last_session)} events after the last websocket session (no gap end was seen)"
    )
    volumes = query_rows(
        env,
        "SELECT (SELECT sum(volume) FROM aggregates WHERE ev = 'A') AS raw, "
        "(SELECT sum(volume) FROM ohlcv_1m WHERE source = 'A') AS m1, "
        "(SELECT sum(volume) FROM ohlcv_1d WHERE source = 'A') AS d1",
    )[0]
    assert float(volumes["raw"]) == float(volumes["m1"]) == float(volumes["d1"]), volumes

    with_data = sum(1 for c in stats["connections"] if c["events_sent_total"])
    gaps = sum(f.read_text().count('"websocket gap') for f in pipeline.log_files("producer"))
    assert gaps >= with_data - 1, f"{with_data} sessions but only {gaps} gaps reported"
    published = {orjson.loads(v)["gap_id"] for v in read_topic(bootstrap, env["FEED_GAPS_TOPIC"])}
    feed_gaps = query_rows(env, "SELECT gap_id, state, rows_restored FROM feed_gaps FINAL")
    assert {r["gap_id"] for r in feed_gaps} == published, "feed_gaps differs from the gaps published"
    assert {r["state"] for r in feed_gaps} <= {"repaired"}, feed_gaps
    restored = sum(int(r["rows_restored"]) for r in feed_gaps)
    assert restored == sum(from_rest.values()), (restored, sum(from_rest.values()))
    return {
        "simulator_sent": stats["totals"]["events_sent_total"],
        "ground_truth_events": len(truth),
        "sessions": sessions,
        "raw": sum(raw_keys.values()),
        "raw_from_the_websocket": sum(live_keys.values()),
        "lost_by_the_websocket_in_producer_kills": lost_in_kills,
        "missed_by_the_websocket": len(set(truth) - set(live_keys)),
        "restored_from_rest": sum(from_rest.values()),
        "gaps_published": len(published),
        "gaps_repaired": len(feed_gaps),
        "not_repairable": len(not_repairable),
        "rest_minute_bars_past_the_session_end": len(past_the_end),
        "after_last_session": len(after_last_session),
        "filtered": sum(filtered_keys.values()),
        "clickhouse_rows": sum(stored.values()),
        "missing_from_clickhouse": len(absent),
        "gaps_reported": gaps,
        "rollup_volume": volumes,
    }
