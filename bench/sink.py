"""Sink benchmarks; each prints one JSON object. Re-run on a quiet machine with one command:

    python -m bench.sink throughput [--rows 1000000] [--data realistic|mixed|random] [--http]
                                    [--partitions 4]
                                          # sink process from a preloaded topic: rows/s, rows per
                                          # CPU-second, peak RSS, bytes/row after OPTIMIZE FINAL;
                                          # --http: the engine in another process, reached over
                                          # ClickHouse's HTTP protocol (bench/clickhouse_http.py);
                                          # --sink-python: the sink image's environment
    python -m bench.sink writer [--rows 200000]        # JSONEachRow vs Python columns vs 100-row loop
    python -m bench.sink latency [--rate 10000]        # event -> queryable p50/p99 at a steady rate
    python -m bench.sink storage [--seconds 3600]      # bytes/row per column: ours, the first, variants
    python -m bench.sink views [--rate 10000]          # CPU of one flush's insert per table, view by view
    python -m bench.sink kafka-engine [--rows 500000]  # peer: ClickHouse's Kafka table engine in chDB

Data: `realistic` = second aggregates (A) of a simulated session (random-walk prices, the
simulator's ground truth, normalised as the processor publishes them); `mixed` = every event of
such a session (trades, quotes, A, AM); `random` = independent random prices (a worst case).
Uses KAFKA_BOOTSTRAP_SERVERS if set, else starts a real local broker (tickpipe_local) for the run.
Extra sink settings go through the environment, e.g. SINK_BATCH_ROWS=200000.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bench.common import ProcessSampler, kafka, machine
from bench.sink_events import second_aggregates, simulated, simulated_aggregates
from tickpipe.kafka import ensure_topics
from tickpipe.process import stop_pid

PARTITIONS = 4


def produce(bootstrap: str, topic: str, items: Iterator[tuple[bytes, bytes]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": "20", "enable.idempotence": "true"})
    count = 0
    for key, value in items:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
    producer.flush(120)
    return count


_SET_BY_BENCH = {"KAFKA_BOOTSTRAP_SERVERS", "SINK_GROUP_ID"}


_PASSED = ("PYTHONPATH", "MALLOC_ARENA_MAX")


def tuning_from_environment() -> dict[str, str]:
    """SINK_* and KAFKA_* settings to try (e.g. SINK_BATCH_ROWS), PYTHONPATH for A/B runs, glibc's arenas."""
    return {
        key: value
        for key, value in os.environ.items()
        if (key.startswith(("SINK_", "KAFKA_")) and key not in _SET_BY_BENCH) or key in _PASSED
    }


@contextlib.contextmanager
def sink_process(
    bootstrap: str, topic: str, folder: Path, dsn: str | None = None, python: str | None = None, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TICKPIPE_HOME": str(folder.parent / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FILTERED_TOPIC": topic,
        "CLICKHOUSE_DSN": dsn or f"chdb://{folder}",
        "CLICKHOUSE_DATABASE": "tp",
        "SINK_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        **tuning_from_environment(),
        **extra,
    }
    log = (folder.parent / "sink.log").open("ab")
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "tickpipe_cli", "sink"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_pid(proc.pid, timeout=30)
        log.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int = PARTITIONS) -> int:
    """Offsets the group committed, summed over partitions (0 while the coordinator settles)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    except KafkaException:
        return 0
    finally:
        consumer.close()


def endpoint(folder: Path) -> Any:
    from tickpipe_clickhouse.query.client import EndpointClient
    from tickpipe_clickhouse.query.endpoint import discovery_path

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(discovery_path(folder).read_text())
            return EndpointClient(info["url"], info["token"])
        time.sleep(0.1)
    raise TimeoutError("the sink's query endpoint did not appear")


def events(data: str, rows: int) -> list[tuple[bytes, bytes]]:
    """`rows` (key, value) records of the chosen data set, as FILTERED_TOPIC carries them."""
    if data == "random":
        return list(second_aggregates(rows))
    if data == "realistic":  # ~100 symbols trade every second at this rate
        source = simulated_aggregates(rows // 95 + 60, rate=5000)
    else:
        source = simulated(rows // 1800 + 10, rate=2000)  # about 2100 events a second
    out = [(str(e["symbol"]).encode(), orjson.dumps(e)) for e in itertools.islice(source, rows)]
    if len(out) < rows:
        raise ValueError(f"the {data} session gave {len(out)} events, fewer than {rows}")
    return out


@contextlib.contextmanager
def http_engine(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """bench/clickhouse_http.py on a free port: (its DSN, its process)."""
    from tickpipe.process import free_port, port_open, spawn, wait_until

    port = free_port()
    log = folder.parent / "clickhouse-http.log"
    proc = spawn([sys.executable, "-m", "bench.clickhouse_http", str(folder), str(port)], log)
    try:  # the port opens once chDB has opened the folder
        wait_until(lambda: port_open("127.0.0.1", port), "the ClickHouse HTTP front", 60, proc, log)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_pid(proc.pid, timeout=30)


def throughput(
    rows: int,
    data: str,
    work: Path,
    http: bool = False,
    python: str | None = None,
    partitions: int = PARTITIONS,
) -> dict[str, Any]:
    records = events(data, rows)
    json_bytes = sum(len(v) for _, v in records)
    with kafka(work) as broker:
        bootstrap = broker.bootstrap
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=partitions)
        produce(bootstrap, topic, iter(records))
        del records
        folder = work / "chdb"
        load_before = os.getloadavg()[0]
        with contextlib.ExitStack() as stack:
            dsn, engine = stack.enter_context(http_engine(folder)) if http else (None, None)
            group = f"bench-{uuid.uuid4().hex[:6]}"
            sink = sink_process(bootstrap, topic, folder, dsn, python, SINK_GROUP_ID=group)
            proc = stack.enter_context(sink)
            sampler = ProcessSampler(proc.pid)
            engine_sampler = ProcessSampler(engine.pid) if engine else None
            first_progress = None
            while (done := committed(bootstrap, group, topic, partitions)) < rows:
                sampler.sample()
                if engine_sampler:
                    engine_sampler.sample()
                if done and first_progress is None:
                    first_progress = (time.perf_counter(), done, sampler.cpu_seconds)
                if proc.poll() is not None:
                    raise RuntimeError(f"sink exited {proc.returncode}; see {work / 'sink.log'}")
                time.sleep(0.05)
            finished = time.perf_counter()
            sampler.sample()
    mode = "http (engine in another process)" if http else "chdb (engine in the sink process)"
    result: dict[str, Any] = {"scenario": "throughput", "data": data, "rows": rows, "mode": mode}
    result["partitions"] = partitions
    result["sink_python"] = python or sys.executable
    if first_progress:
        started, done_then, cpu_then = first_progress
        result["rows_per_s"] = round((rows - done_then) / (finished - started))
        result["rows_per_cpu_s"] = round((rows - done_then) / max(1e-9, sampler.cpu_seconds - cpu_then))
    result["sink_peak_rss_mb"] = round(sampler.peak_rss_mb, 1)
    if engine_sampler:
        result["engine_peak_rss_mb"] = round(engine_sampler.peak_rss_mb, 1)
        result["engine_cpu_s"] = round(engine_sampler.cpu_seconds, 1)
    result["load_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["tuning"] = {k: v for k, v in tuning_from_environment().items() if k != "PYTHONPATH"}
    return result | _storage(work, rows, json_bytes)


def _storage(work: Path, rows: int, json_bytes: int) -> dict[str, Any]:
    """After the sink stopped: merge, then bytes on disk per row (this process opens the folder)."""
    from tickpipe_clickhouse.connect import connect

    client = connect(f"chdb://{work / 'chdb'}")
    sizes: dict[str, Any] = {}
    for table in ("aggregates", "trades", "quotes", "bars"):
        client.command(f"OPTIMIZE TABLE tp.{table} FINAL")
        count, size = client.query(
            "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts"
            " WHERE database = 'tp' AND table = {t:String} AND active",
            parameters={"t": table},
        ).result_rows[0]
        if count:
            sizes[f"{table}_bytes_per_row"] = round(int(size) / int(count), 2)
    sizes["json_bytes_per_row"] = round(json_bytes / rows, 1)
    total = client.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'tp' AND active"
        " AND table IN ('aggregates', 'trades', 'quotes')"
    ).result_rows[0][0]
    sizes["raw_tables_bytes_per_row"] = round(int(total) / rows, 2)
    sizes["compression_vs_json"] = round(json_bytes / max(1, int(total)), 1)
    client.close()
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    scenarios = ["throughput", "writer", "latency", "storage", "views", "kafka-engine"]
    parser.add_argument("scenario", choices=scenarios)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--data", choices=["realistic", "mixed", "random"], default="realistic")
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="views: runs of each variant (median)")
    parser.add_argument("--http", action="store_true", help="throughput: the sink in HTTP mode")
    parser.add_argument(
        "--partitions",
        type=int,
        default=PARTITIONS,
        help="throughput: partitions of the preloaded topic (a deployment's FILTERED_TOPIC has 1)",
    )
    parser.add_argument(
        "--sink-python",
        default=None,
        help="throughput: run the sink with this interpreter, e.g. a venv built from deploy/locks/sink.txt "
        "(what the sink image holds: no chDB, pyarrow or numpy); default: this one",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tickpipe-bench-sink-") as tmp:
        work = Path(tmp)
        if args.scenario == "throughput":
            result = throughput(
                args.rows or 1_000_000, args.data, work, args.http, args.sink_python, args.partitions
            )
        elif args.scenario == "writer":
            from bench.sink_writers import compare_writers

            result = compare_writers(args.rows or 200_000, work)
        elif args.scenario == "latency":
            from bench.sink_latency import latency

            result = latency(args.rate, args.seconds or 20.0, work)
        elif args.scenario == "storage":
            from bench.sink_storage import storage

            result = storage(int(args.seconds or 3600), work)
        elif args.scenario == "views":
            from bench.sink_views import views

            result = views(args.rate, int(args.seconds or 20), args.repeats, work)
        else:
            from bench.sink_kafka_engine import kafka_engine

            result = kafka_engine(args.rows or 500_000, work)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
