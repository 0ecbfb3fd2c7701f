"""Scale-out: two processors and two sinks in their consumer groups on partitioned topics (not in CI).

    python -m bench scale-out                             # 10k events/s for 60 s, 4 partitions
    python -m bench scale-out --param rate=20000 --param seconds=120 --param partitions=4
    KAFKA_BOOTSTRAP_SERVERS=host:9092 python -m bench scale-out   # an existing broker

The simulator -> one producer (one websocket per API key) -> the raw topic (`partitions`) -> two
processors in one group (transactions on) -> the filtered topic (`partitions`) -> two sinks in one
group. A chDB folder is opened by one process only, so each sink writes its own folder: two
ClickHouse targets, as two sinks against two shards would. Checked at the end, through each sink's
query endpoint: zero loss (the rows of both targets add up to the events the simulator sent),
nothing twice (no (symbol, sequence) twice in a target's trades or quotes; with the totals equal to
the events sent, a row in both targets would need a row lost elsewhere), the symbols found in both
targets (a partition moved from one sink to the other by a rebalance, e.g. when the second sink
joined after the first had started), and each instance's share.
Reported per instance: messages in and out (processors), rows (sinks), CPU seconds and CPU per
event, peak RSS.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ProcessSampler, kafka
from bench.e2e import CSV
from tickpipe.contract import dlq_topic
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port
from tickpipe_clickhouse.query.client import live_endpoint
from tickpipe_demo.monitor import scrape, total
from tickpipe_demo.services import ServiceProcess
from tickpipe_simulator.testing import SimulatorProcess

COUNTS = (
    "SELECT 'trades', count(), uniqExact(symbol, sequence) FROM trades UNION ALL "
    "SELECT 'quotes', count(), uniqExact(symbol, sequence) FROM quotes UNION ALL "
    "SELECT 'aggregates', count(), count() FROM aggregates"
)
SYMBOLS = (
    "SELECT DISTINCT symbol FROM (SELECT symbol FROM trades UNION ALL SELECT symbol FROM quotes "
    "UNION ALL SELECT symbol FROM aggregates)"
)


def _services(
    workdir: Path, bootstrap: str, sim: SimulatorProcess, partitions: int
) -> dict[str, ServiceProcess]:
    csv = workdir / "subscriptions.csv"
    csv.write_text(CSV)
    tag = uuid.uuid4().hex[:6]  # topics and groups of their own: the broker may be a shared one
    raw, filtered = f"scale-{tag}-raw", f"scale-{tag}-filtered"
    kafka = {"bootstrap.servers": bootstrap}
    ensure_topics(kafka, [raw, filtered], partitions=partitions)
    ensure_topics(kafka, [dlq_topic(raw), dlq_topic(filtered)])
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(workdir)),
        "TICKPIPE_HOME": str(workdir / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RAW_TOPIC": raw,
        "FILTERED_TOPIC": filtered,
        "POLYGON_FEED": sim.feed,
        "POLYGON_SECURE": "false",
        "POLYGON_API_KEY": sim.api_key,
        "SUBSCRIPTIONS_URI": str(csv),
        "LOG_LEVEL": "WARNING",
        "PROCESSOR_GROUP_ID": f"scale-{tag}-processor",
        "SINK_GROUP_ID": f"scale-{tag}-sink",
    }
    logs = workdir / "logs"
    services = {
        "producer": ServiceProcess("producer", ["producer"], base, logs / "producer.log", free_port())
    }
    for i in (1, 2):
        env = {**base, "PROCESSOR_INSTANCE_ID": f"scale-processor-{i}"}
        services[f"processor-{i}"] = ServiceProcess(
            "processor", ["processor"], env, logs / f"processor-{i}.log", free_port()
        )
        env = {
            **base,
            "SINK_INSTANCE_ID": f"scale-sink-{i}",
            "CLICKHOUSE_DSN": f"chdb://{workdir / f'chdb-{i}'}",
        }
        services[f"sink-{i}"] = ServiceProcess("sink", ["sink"], env, logs / f"sink-{i}.log", free_port())
    return services


def _target(folder: Path) -> dict[str, Any]:
    client = live_endpoint(folder)
    if client is None:
        return {"error": "no live endpoint"}
    counts = {str(t): (int(n), int(u)) for t, n, u in client.query(COUNTS).result_rows}
    symbols = {str(row[0]) for row in client.query(SYMBOLS).result_rows}
    return {"counts": counts, "symbols": symbols}


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    rate = int(params.get("rate", "10000"))
    seconds = int(params.get("seconds", "60"))
    partitions = int(params.get("partitions", "4"))
    sim_args = ["--seed", "9", "--symbols", "100", "--rate", str(rate), "--session-seconds", str(seconds)]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        # KAFKA_BOOTSTRAP_SERVERS: an existing broker (its CPU is then not reported); else a local one
        with kafka(workdir) as local, SimulatorProcess(workdir, *sim_args, "--wait-for-subscriber") as sim:
            broker, bootstrap = local.broker, local.bootstrap
            services = _services(workdir, bootstrap, sim, partitions)
            samplers: dict[str, ProcessSampler] = {}
            try:
                # Sinks and processors first, so both members of each group join before data flows.
                for name in ("sink-1", "sink-2", "processor-1", "processor-2", "producer"):
                    services[name].start()
                    pid = services[name].pid
                    assert pid is not None
                    samplers[name] = ProcessSampler(pid)
                if broker is not None and broker.pid is not None:
                    samplers["broker"] = ProcessSampler(broker.pid)
                deadline = time.monotonic() + seconds + 240
                sent, rows, finished_at = 0, 0.0, None
                while time.monotonic() < deadline:
                    for sampler in samplers.values():
                        sampler.sample()
                    stats = sim.stats()
                    sent = int(stats["totals"]["events_sent_total"])
                    rows = sum(
                        total(scrape(services[f"sink-{i}"].metrics_url), "tickpipe_sink_rows_total")
                        for i in (1, 2)
                    )
                    if stats["feed"]["finished"]:
                        finished_at = finished_at or time.monotonic()
                        if rows >= sent:
                            break
                    time.sleep(0.5)
                drain = time.monotonic() - finished_at if finished_at else None
                metrics = {name: scrape(s.metrics_url) for name, s in services.items()}
                targets = {f"sink-{i}": _target(workdir / f"chdb-{i}") for i in (1, 2)}
            finally:
                for name in ("producer", "processor-1", "processor-2", "sink-1", "sink-2"):
                    services[name].stop(30)
    instances: dict[str, Any] = {}
    for name, sampler in samplers.items():
        entry: dict[str, Any] = {
            "cpu_seconds": round(sampler.cpu_seconds, 1),
            "peak_rss_mb": round(sampler.peak_rss_mb, 1),
        }
        m = metrics.get(name, {})
        handled = sent  # the producer and the broker see every event
        if name.startswith("processor"):
            entry["messages_in"] = int(total(m, "tickpipe_processor_messages_in_total"))
            entry["messages_out"] = int(total(m, "tickpipe_processor_messages_out_total"))
            entry["partitions"] = int(total(m, "tickpipe_processor_partitions"))
            entry["messages_per_second"] = round(entry["messages_in"] / seconds)
            handled = entry["messages_in"]
        if name.startswith("sink"):
            entry["rows"] = int(total(m, "tickpipe_sink_rows_total"))
            entry["rows_per_second"] = round(entry["rows"] / seconds)
            handled = entry["rows"]
            entry["rows_per_cpu_second"] = (
                round(entry["rows"] / sampler.cpu_seconds) if sampler.cpu_seconds else None
            )
        # CPU per event this instance handled (its own share, for processors and sinks)
        entry["cpu_us_per_event"] = round(sampler.cpu_seconds / handled * 1e6, 2) if handled else None
        instances[name] = entry
    stored = {
        i: sum(n for n, _ in t.get("counts", {}).values()) if "counts" in t else None
        for i, t in targets.items()
    }
    twice = {
        i: {table: n - u for table, (n, u) in t.get("counts", {}).items() if n != u}
        for i, t in targets.items()
    }
    symbols = [t.get("symbols", set()) for t in targets.values()]
    shared = sorted(symbols[0] & symbols[1]) if len(symbols) == 2 else []
    rows_stored = sum(v or 0 for v in stored.values())
    result = {
        "rate_trades_quotes": rate,
        "seconds": seconds,
        "partitions": partitions,
        "events_sent": sent,
        "rows_stored": stored,
        "zero_loss": rows_stored == sent and all(v is not None for v in stored.values()),
        "nothing_twice": not any(twice.values()),
        "duplicates": twice,
        "symbols_per_target": {i: len(s) for i, s in zip(targets, symbols, strict=True)},
        "symbols_in_both_targets": shared,
        "drain_seconds_after_session": round(drain, 2) if drain is not None else None,
        "instances": instances,
    }
    per = ", ".join(
        f"{n} {e.get('messages_per_second', e.get('rows_per_second'))}/s"
        for n, e in instances.items()
        if n.startswith(("processor", "sink"))
    )
    summary = (
        f"scale-out {sent:,} events ({rate:,}/s x {seconds} s, {partitions} partitions): "
        f"{'zero loss' if result['zero_loss'] else 'LOSS or not drained'} "
        f"({rows_stored:,} rows in 2 targets), "
        f"{'nothing twice' if result['nothing_twice'] else 'DUPLICATES'}, "
        f"symbols in both targets {len(shared)} (moved by a rebalance); {per}"
    )
    return result, summary
