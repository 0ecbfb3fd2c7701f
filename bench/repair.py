"""Gap repair latency: a producer down for 60 s, then how long until `tickpipe repair` has filled the gap.

    python -m bench repair                                   # 10 gaps of 60 s, 2k trades+quotes/s
    python -m bench repair --param gaps=3 --param gap_seconds=30 --param rate=5000

A `tickpipe simulate` subprocess streams a real-time session (A, AM, T, Q for every symbol) to a
producer; the producer is killed (kill -9) for `gap_seconds`, then started again, `gaps` times. A
`tickpipe repair` process fills each gap from the simulator's REST API into RAW_TOPIC. Per gap:
`latency_s` = from the moment the producer is back (the gap's `to_ms`, its first frame after the
restart) to the moment the repair has committed the gap (its `tickpipe_repair_gaps_total` counter
moves; polled every 100 ms), and the events restored. The simulator's REST has each second as
soon as it was generated (Polygon's trails the feed: there REPAIR_REST_LAG_SECONDS, 60 by default,
comes on top), so REPAIR_REST_LAG_SECONDS=0 here; the repair still waits until the live feed has
run REPAIR_MARGIN_SECONDS (5) past the widened window, i.e. 2 x 5 s after `to_ms`.
Target (issue 16): p99 <= 30 s over 10 gaps of 60 s.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer

from bench.common import kafka
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port
from tickpipe_demo.monitor import scrape, total
from tickpipe_demo.services import ServiceProcess
from tickpipe_simulator.testing import SimulatorProcess

CSV = "channel,symbol\nA,*\nAM,*\nT,*\nQ,*\n"
TARGET_P99_SECONDS = 30.0
POLL_SECONDS = 0.1


def _wait(condition: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench repair: {what} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _gap_records(consumer: Consumer) -> list[dict[str, Any]]:
    out = []
    for message in consumer.consume(num_messages=100, timeout=0.2):
        if message.error() is None:
            out.append(orjson.loads(message.value() or b"{}"))
    return out


def _run(
    work: Path, bootstrap: str, gaps: int, gap_seconds: float, rate: int, symbols: int
) -> dict[str, Any]:
    tag = f"bench-repair-{uuid.uuid4().hex[:6]}"
    raw, gaps_topic, states = f"{tag}-raw", f"{tag}-gaps", f"{tag}-states"
    ensure_topics({"bootstrap.servers": bootstrap}, {raw: 4, gaps_topic: 1, states: 1})
    csv = work / "subscriptions.csv"
    csv.write_text(CSV)
    # An endless real-time session; REST keeps the last 900 s of ticks (the simulator's default).
    args = ["--seed", "7", "--rate", str(rate), "--symbols", str(symbols)]
    with SimulatorProcess(work, *args, start_timeout=60) as sim:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(work)),
            "TICKPIPE_HOME": str(work / "home"),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RAW_TOPIC": raw,
            "FEED_GAPS_TOPIC": gaps_topic,
            "GAP_STATES_TOPIC": states,
            "POLYGON_FEED": sim.feed,
            "POLYGON_SECURE": "false",
            "POLYGON_API_KEY": sim.api_key,
            "POLYGON_REST_URL": sim.base_url,
            "SUBSCRIPTIONS_URI": str(csv),
            "RECONNECT_INITIAL_SECONDS": "0.2",
            "REPAIR_REST_LAG_SECONDS": "0",
            "REPAIR_REST_MAX_WAIT_SECONDS": "0",
            "REPAIR_GROUP_ID": f"{tag}-repair",
            "REPAIR_TRANSACTIONAL_ID": f"{tag}-repair",
            "LOG_LEVEL": "INFO",
        }
        logs = work / "logs"
        producer = ServiceProcess("producer", ["producer"], env, logs / "producer-0.log", free_port()).start()
        repair = ServiceProcess("repair", ["repair"], env, logs / "repair.log", free_port()).start()
        watch = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"{tag}-watch", "auto.offset.reset": "earliest"}
        )
        watch.subscribe([gaps_topic])
        per_gap: list[dict[str, Any]] = []
        try:
            _wait(lambda: bool(scrape(repair.metrics_url)), "the repair to serve metrics", 60)
            for n in range(gaps):
                _wait(
                    lambda p=producer: (
                        total(scrape(p.metrics_url), "tickpipe_producer_events_produced_total") > 0
                    ),
                    "the producer to publish",
                    60,
                )
                time.sleep(5)  # the feed runs before the next kill: pacing, not synchronisation
                producer.kill()
                down_at = time.monotonic()
                time.sleep(gap_seconds)  # the gap's length is the measured quantity's input
                producer = ServiceProcess(
                    "producer", ["producer"], env, logs / f"producer-{n + 1}.log", free_port()
                ).start()
                restarted = time.time()
                found: list[dict[str, Any]] = []
                _wait(lambda f=found: bool(f.extend(_gap_records(watch)) or f), "the gap record", 60)
                gap = found[0]
                repaired_before = total(scrape(repair.metrics_url), "tickpipe_repair_gaps_total")
                events_before = total(scrape(repair.metrics_url), "tickpipe_repair_events_total")
                _wait(
                    lambda b=repaired_before: (
                        total(scrape(repair.metrics_url), "tickpipe_repair_gaps_total") > b
                    ),
                    f"gap {n + 1} to be repaired",
                    600,
                )
                done = time.time()
                metrics = scrape(repair.metrics_url)
                per_gap.append(
                    {
                        "gap_s": round((gap["to_ms"] - gap["from_ms"]) / 1000, 1),
                        "down_s": round(time.monotonic() - down_at, 1),
                        "latency_s": round(done - gap["to_ms"] / 1000, 2),
                        "restart_to_repaired_s": round(done - restarted, 2),
                        "events_restored": int(
                            total(metrics, "tickpipe_repair_events_total") - events_before
                        ),
                        "load_1m": round(os.getloadavg()[0], 2),
                    }
                )
                print(orjson.dumps({"gap": n + 1, **per_gap[-1]}).decode(), flush=True)
        finally:
            watch.close()
            producer.stop(15)
            repair.stop(30)
    latencies = np.array([g["latency_s"] for g in per_gap])
    return {
        "gaps": per_gap,
        "latency_p50_s": round(float(np.percentile(latencies, 50)), 2),
        "latency_p99_s": round(float(np.percentile(latencies, 99)), 2),
        "latency_max_s": round(float(latencies.max()), 2),
        "misses": int((latencies > TARGET_P99_SECONDS).sum()),
        "rate": rate,
        "symbols": symbols,
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    work = Path(tempfile.mkdtemp(prefix="bench-repair-"))
    gaps, gap_seconds = int(params.get("gaps", 10)), float(params.get("gap_seconds", 60))
    rate, symbols = int(params.get("rate", 2000)), int(params.get("symbols", 20))
    with kafka(work) as broker:
        result = _run(work, broker.bootstrap, gaps, gap_seconds, rate, symbols)
    summary = (
        f"repair of {gaps} gaps of {gap_seconds:.0f} s: p50 {result['latency_p50_s']} s, "
        f"p99 {result['latency_p99_s']} s after the producer was back (target {TARGET_P99_SECONDS:.0f} s), "
        f"{result['misses']} over the target"
    )
    return result, summary
