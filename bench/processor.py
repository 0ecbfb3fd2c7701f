"""Processor throughput, side by side with an equivalent Quix Streams app, in one run.

    python -m bench.processor                      # 1M messages, tickpipe then Quix, JSON on stdout
    python -m bench.processor --messages 300000 --engines tickpipe --profile /tmp/p.prof
    python -m bench.processor --engines baseline,tickpipe --baseline ../other-checkout  # before/after

Preloads RAW with synthetic events (bench/processor_data.py), then runs each engine as its own
process on that topic (own consumer group, own output topic, transactions on, same rules) and
watches its committed offsets. Reported per engine: sustained msg/s (from the first committed
offset to the last), CPU seconds, peak RSS (VmHWM) and the output count (read_committed), which
must be equal between engines. Uses KAFKA_BOOTSTRAP_SERVERS, else starts the local broker.
The Quix peer runs from its own venv: `make bench-tools` once. The `baseline` engine is the tickpipe
processor of another checkout (`--baseline DIR`, e.g. `git worktree add DIR main`) run with this
environment, so a change's cost is measured against its parent on the same topic in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from bench.common import kafka
from bench.processor_data import raw_events
from tickpipe.kafka import ensure_topics
from tickpipe.process import spawn, stop_pid

BENCH_RULES = """\
version: 1
events: [A, AM, T, Q]
symbols: {deny: [SYM013, SYM014]}
session: regular
min_price: 1
min_volume: 1
"""
_TICKS = os.sysconf("SC_CLK_TCK")


def preload(bootstrap: str, topic: str, count: int) -> float:
    started = time.perf_counter()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20,
         "compression.type": "lz4", "queue.buffering.max.messages": 500_000}
    )  # fmt: skip
    for key, value, headers in raw_events(count):
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0, "preload did not finish"
    return time.perf_counter() - started


QUIX_VENV = Path(__file__).resolve().parent.parent / ".tools" / "quix"


def quix_python() -> str:
    """The interpreter of the Quix peer: its own venv (`make bench-tools`), because quixstreams pins
    confluent-kafka < 2.13 and pydantic < 2.14, older than tickpipe's; $QUIX_PYTHON overrides."""
    explicit = os.environ.get("QUIX_PYTHON")
    if explicit:
        return explicit
    candidate = QUIX_VENV / "bin" / "python"
    if candidate.exists():
        return str(candidate)
    raise SystemExit("the Quix peer needs its own venv: run `make bench-tools` (or set QUIX_PYTHON)")


SOURCE_FOLDERS = ("", "apps", "processor", "producer", "clickhouse", "simulator")  # pyproject's packages


def engine_command(engine: str, profile: str | None) -> list[str]:
    if engine == "quix":
        return [quix_python(), "-m", "bench.processor_quix"]
    if engine == "baseline":
        return [sys.executable, "-m", "tickpipe_cli", "processor"]
    prefix = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    return [*prefix, "-m", "tickpipe_cli", "processor"]


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(0, tp.offset) for tp in offsets)
    finally:
        consumer.close()


def count_output(bootstrap: str, topic: str) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex}",
         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.partition.eof": True}
    )  # fmt: skip
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
    seen, done = 0, set[int]()
    while len(done) < len(metadata.partitions):
        for message in consumer.consume(10_000, 2.0):
            if message.error():
                done.add(message.partition() or 0)
            else:
                seen += 1
    consumer.close()
    return seen


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds of the process and its threads, peak RSS in bytes) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (python main thread, librdkafka's rdk:* threads)."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = name.split("/")[0].split(":")[0] + (":" + name.split(":")[1][:8] if ":" in name else "")
        totals[name] = round(totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS, 2)
    return dict(sorted(totals.items(), key=lambda item: -item[1])[:6])


def run_engine(
    engine: str,
    bootstrap: str,
    raw: str,
    total: int,
    partitions: int,
    rules: Path,
    work: Path,
    profile: str | None,
    extra: dict[str, str],
    instances: int = 1,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Run `instances` processes of `engine` in one group until the group committed `total`."""
    group = f"bench-{engine}-{uuid.uuid4().hex[:8]}"
    out = f"bench-out-{engine}-{uuid.uuid4().hex[:8]}"
    ensure_topics({"bootstrap.servers": bootstrap}, [out], partitions=partitions)
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "RAW_TOPIC": raw, "FILTERED_TOPIC": out,
        "PROCESSOR_GROUP_ID": group, "FILTER_RULES": str(rules),
        "METRICS_PORT": "0", "LOG_FORMAT": "json", "TICKPIPE_HOME": str(work), **extra,
    }  # fmt: skip
    if engine == "baseline":
        if baseline is None:
            raise SystemExit("the baseline engine needs --baseline DIR (another checkout)")
        env["PYTHONPATH"] = os.pathsep.join(str(baseline.resolve() / folder) for folder in SOURCE_FOLDERS)
    started = time.perf_counter()
    processes = [
        spawn(
            engine_command(engine, profile),
            work / f"{engine}-{n}.log",
            env={**env, "PROCESSOR_INSTANCE_ID": f"{group}-{n}"},
            cwd=Path.cwd(),
        )
        for n in range(instances)
    ]
    samples: list[tuple[float, int, float]] = []
    cpu, peak, threads = 0.0, 0, {}
    try:
        deadline = started + 900
        while time.perf_counter() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{engine} exited with {process.returncode}; see the logs in {work}")
            try:
                done = committed(bootstrap, group, raw, partitions)
            except KafkaException:  # the group coordinator is moving or loading: ask again
                time.sleep(0.25)
                continue
            now = time.perf_counter()
            stats = [proc_stats(process.pid) for process in processes]
            cpu, peak = sum(c for c, _ in stats), max(p for _, p in stats)
            samples.append((now, done, cpu))
            threads = thread_cpu(processes[0].pid)
            if done >= total:
                break
            time.sleep(0.25)  # sampling period of the progress curve, not synchronisation
    finally:
        for process in processes:
            stop_pid(process.pid, 30)
    progressed = [(t, n, c) for t, n, c in samples if n > 0]
    (t0, n0, c0), (t1, n1, c1) = progressed[0], progressed[-1]
    return {
        "engine": engine,
        "instances": instances,
        "messages": n1,
        "completed": n1 >= total,
        "wall_s": round(t1 - started, 2),
        "sustained_msg_s": round((n1 - n0) / (t1 - t0)) if t1 > t0 else None,
        "cpu_s": round(cpu, 2),
        "cpu_us_per_msg": round(cpu / max(1, n1) * 1e6, 2),
        "steady_cpu_us_per_msg": round((c1 - c0) / max(1, n1 - n0) * 1e6, 2),  # start-up excluded
        "peak_rss_mb": round(peak / 2**20, 1),  # of the largest instance
        "cpu_s_by_thread": threads,  # of the first instance
        "output_messages": count_output(bootstrap, out),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--engines", default="tickpipe,quix", help="comma list: tickpipe, quix")
    parser.add_argument("--profile", help="write a cProfile of the tickpipe engine here")
    parser.add_argument("--instances", type=int, default=1, help="tickpipe processes in the group")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the engines (tuning)")
    parser.add_argument("--baseline", type=Path, help="checkout whose processor the `baseline` engine runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-processor-") as tmp:
        work = Path(tmp)
        with kafka(work) as broker:
            bootstrap = broker.bootstrap
            rules = work / "rules.yaml"
            rules.write_text(BENCH_RULES)
            extra = dict(item.split("=", 1) for item in args.env)
            raw = f"bench-raw-{uuid.uuid4().hex[:8]}"
            ensure_topics({"bootstrap.servers": bootstrap}, [raw], partitions=args.partitions)
            preload_s = preload(bootstrap, raw, args.messages)
            results = [
                run_engine(
                    e,
                    bootstrap,
                    raw,
                    args.messages,
                    args.partitions,
                    rules,
                    work,
                    args.profile,
                    extra,
                    baseline=args.baseline,
                )
                for e in args.engines.split(",")
            ]
    report: dict[str, Any] = {
        "scenario": "processor", "messages": args.messages, "env": extra, "partitions": args.partitions,
        "preload_s": round(preload_s, 2), "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
        "results": results,
    }  # fmt: skip
    rates = {r["engine"]: r["sustained_msg_s"] for r in results}
    if rates.get("tickpipe") and rates.get("quix"):
        report["speedup_vs_quix"] = round(rates["tickpipe"] / rates["quix"], 2)
    if rates.get("tickpipe") and rates.get("baseline"):
        report["throughput_vs_baseline"] = round(rates["tickpipe"] / rates["baseline"], 3)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
