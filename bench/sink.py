"""Sink benchmarks; each prints one JSON object. Re-run on a quiet machine with one command:

    python -m bench.sink throughput [--rows 1000000]   # sink process: rows/s, peak RSS, bytes/row
    python -m bench.sink writer [--rows 200000]        # JSONEachRow vs Python columns vs 100-row loop
    python -m bench.sink latency [--rate 10000]        # event -> queryable p50/p99 at a steady rate

Uses KAFKA_BOOTSTRAP_SERVERS if set, else starts a real local broker (tickpipe.local) for the run.
"""

from __future__ import annotations

import argparse
import contextlib
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

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bench.sink_events import second_aggregates
from tickpipe.kafka import ensure_topics
from tickpipe.local.process import stop_pid

PARTITIONS = 4


@contextlib.contextmanager
def kafka_bootstrap(workdir: Path) -> Iterator[str]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    from tickpipe.local.kafka_broker import KafkaBroker

    broker = KafkaBroker(workdir / "kafka")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


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


@contextlib.contextmanager
def sink_process(bootstrap: str, topic: str, folder: Path, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TICKPIPE_HOME": str(folder.parent / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FILTERED_TOPIC": topic,
        "CLICKHOUSE_DSN": f"chdb://{folder}",
        "CLICKHOUSE_DATABASE": "tp",
        "SINK_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    log = (folder.parent / "sink.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickpipe", "sink"], env=env, stdout=log, stderr=log, start_new_session=True
    )
    try:
        yield proc
    finally:
        stop_pid(proc.pid, timeout=30)
        log.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    """Offsets the group committed, summed over partitions (0 while the coordinator settles)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    except KafkaException:
        return 0
    finally:
        consumer.close()


def endpoint(folder: Path) -> Any:
    from tickpipe_clickhouse.endpoint import discovery_path
    from tickpipe_clickhouse.query import EndpointClient

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(discovery_path(folder).read_text())
            return EndpointClient(info["url"], info["token"])
        time.sleep(0.1)
    raise TimeoutError("the sink's query endpoint did not appear")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def throughput(rows: int, work: Path) -> dict[str, Any]:
    with kafka_bootstrap(work) as bootstrap:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=PARTITIONS)
        json_bytes = sum(len(v) for _, v in second_aggregates(rows))
        produce(bootstrap, topic, second_aggregates(rows))
        folder = work / "chdb"
        with sink_process(bootstrap, topic, folder) as proc:
            group = _group_of(proc)
            first_progress = None
            while (done := committed(bootstrap, group, topic)) < rows:
                if done and first_progress is None:
                    first_progress = (time.perf_counter(), done)
                if proc.poll() is not None:
                    raise RuntimeError(f"sink exited {proc.returncode}; see {work / 'sink.log'}")
                time.sleep(0.05)
            finished = time.perf_counter()
            rss = peak_rss_mb(proc.pid)
    return _storage(work, rows, json_bytes) | {
        "scenario": "throughput",
        "rows": rows,
        "rows_per_s": round((rows - first_progress[1]) / (finished - first_progress[0]))
        if first_progress
        else None,
        "sink_peak_rss_mb": round(rss, 1),
    }


def _group_of(proc: subprocess.Popen[bytes]) -> str:
    return Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"SINK_GROUP_ID=")[1].split(b"\0")[0].decode()


def _storage(work: Path, rows: int, json_bytes: int) -> dict[str, Any]:
    """After the sink stopped: merge, then bytes on disk per row (this process opens the folder)."""
    from tickpipe_clickhouse.connect import connect

    client = connect(f"chdb://{work / 'chdb'}")
    sizes: dict[str, Any] = {}
    for table in ("aggregates", "bars_1m"):
        client.command(f"OPTIMIZE TABLE tp.{table} FINAL")
        count, size = client.query(
            "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts"
            " WHERE database = 'tp' AND table = {t:String} AND active",
            parameters={"t": table},
        ).result_rows[0]
        sizes[f"{table}_bytes_per_row"] = round(int(size) / max(1, int(count)), 2)
    sizes["json_bytes_per_row"] = round(json_bytes / rows, 1)
    sizes["compression_vs_json"] = round(sizes["json_bytes_per_row"] / sizes["aggregates_bytes_per_row"], 1)
    client.close()
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=["throughput", "writer", "latency"])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tickpipe-bench-sink-") as tmp:
        work = Path(tmp)
        if args.scenario == "throughput":
            result = throughput(args.rows or 1_000_000, work)
        elif args.scenario == "writer":
            from bench.sink_writers import compare_writers

            result = compare_writers(args.rows or 200_000, work)
        else:
            from bench.sink_latency import latency

            result = latency(args.rate, args.seconds, work)
    result["provisional"] = "shared 2-core machine; re-run on a quiet one"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
