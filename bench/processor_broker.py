"""What the producer's and the processor's Kafka settings cost the broker at a low, steady rate.

    python -m bench.processor_broker --rate 10000 --seconds 30 --baseline DIR --repeat 2

On a broker of its own (so its CPU is only this run's), a paced writer publishes raw events
(bench/processor_data.py) at `--rate` messages/s with the producer service's librdkafka settings
(`tickpipe_producer.publisher.producer_config`, two headers per message, as the producer sends
them) while the processor (a real process, transactions on) normalises them into its filtered
topic. Reported per engine: broker CPU seconds and CPU microseconds per event, the processor's CPU,
its transactions per second, and raw -> filtered latency (read_committed reader: time it read the
output minus the output's `received_ns`). `--baseline DIR` runs the same with another checkout's
producer settings and processor, alternating baseline and this tree `--repeat` times.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from bench.processor import BENCH_RULES, SOURCE_FOLDERS, proc_stats
from bench.processor_data import raw_events
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port, spawn, stop_pid
from tickpipe_demo.monitor import scrape, total
from tickpipe_local.kafka_broker import KafkaBroker
from tickpipe_producer.publisher import producer_config

_TICKS = os.sysconf("SC_CLK_TCK")
ConfigFn = Callable[[dict[str, str], float], dict[str, Any]]


def _write_paced(bootstrap: str, topic: str, rate: int, seconds: float, config: ConfigFn) -> int:
    """Publish at `rate` msg/s for `seconds` in 1 ms steps; each header carries its send time."""
    producer = Producer(config({"bootstrap.servers": bootstrap}, 60.0))
    events = raw_events(int(rate * seconds) + 1)
    sent = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(elapsed * rate)
        now = str(time.time_ns()).encode()
        while sent < due:
            key, value, _ = next(events)
            headers: list[tuple[str, str | bytes | None]] = [
                ("tp.received_ns", now),
                ("tp.feed", b"bench/stocks"),
            ]
            while True:
                try:
                    producer.produce(topic, value, key, headers=headers)
                    break
                except BufferError:  # the local queue is full: serve deliveries, then again
                    producer.poll(0.01)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)  # pacing of the writer, not synchronisation
    assert producer.flush(60) == 0
    return sent


def _read_latency(bootstrap: str, topic: str, stop: threading.Event, seen: list[float]) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex}",
         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "fetch.wait.max.ms": 10}
    )  # fmt: skip
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            for message in consumer.consume(10_000, 0.1):
                if message.error() is None:
                    received = orjson.loads(message.value() or b"{}").get("received_ns")
                    if received:
                        seen.append((time.time_ns() - received) / 1e6)
    finally:
        consumer.close()


def _transactions(port: int) -> float:
    return total(scrape(f"http://127.0.0.1:{port}/metrics"), "tickpipe_processor_transaction_seconds_count")


def _cpu(pid: int) -> float:
    return proc_stats(pid)[0]


def run_once(
    bootstrap: str, broker_pid: int, rate: int, seconds: float, work: Path, baseline: Path | None
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    raw, out = f"lowrate-raw-{tag}", f"lowrate-out-{tag}"
    ensure_topics({"bootstrap.servers": bootstrap}, [raw, out], partitions=4)
    config: ConfigFn = producer_config
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "RAW_TOPIC": raw, "FILTERED_TOPIC": out,
        "PROCESSOR_GROUP_ID": f"lowrate-{tag}", "PROCESSOR_INSTANCE_ID": f"lowrate-{tag}",
        "FILTER_RULES": str(work / "rules.yaml"), "METRICS_PORT": str(port), "TICKPIPE_HOME": str(work),
    }  # fmt: skip
    if baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(baseline.resolve() / folder) for folder in SOURCE_FOLDERS)
        publisher = runpy.run_path(str(baseline / "producer" / "tickpipe_producer" / "publisher.py"))
        config = publisher["producer_config"]
    processor = spawn(
        [sys.executable, "-m", "tickpipe_cli", "processor"], work / f"processor-{tag}.log", env=env
    )
    latencies: list[float] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_latency, args=(bootstrap, out, stop, latencies), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not latencies and time.monotonic() < deadline:  # warm-up: until outputs come through
            _write_paced(bootstrap, raw, 500, 1.0, config)
        assert latencies, f"the processor produced nothing; see {work}"
        _write_paced(bootstrap, raw, rate, 3.0, config)  # and at the measured rate for a moment
        broker0, proc0, txn0 = _cpu(broker_pid), _cpu(processor.pid), _transactions(port)
        latencies.clear()
        started = time.perf_counter()
        sent = _write_paced(bootstrap, raw, rate, seconds, config)
        elapsed = time.perf_counter() - started
        broker1, proc1, txn1 = _cpu(broker_pid), _cpu(processor.pid), _transactions(port)
        time.sleep(1.0)  # let the reader see the last committed batch
    finally:
        stop.set()
        reader.join(10)
        stop_pid(processor.pid, 30)
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else -1.0

    broker_cpu = broker1 - broker0
    return {
        "engine": "baseline" if baseline else "tickpipe",
        "sent": sent,
        "seconds": round(elapsed, 1),
        "broker_cpu_s": round(broker_cpu, 2),
        "broker_cpu_us_per_event": round(broker_cpu / max(1, sent) * 1e6, 1),
        "processor_cpu_s": round(proc1 - proc0, 2),
        "outputs_seen": len(latencies),
        "raw_to_filtered_ms_p50_p99_max": [pct(0.5), pct(0.99), round(ordered[-1], 1) if ordered else -1],
        "transactions_per_s": round((txn1 - txn0) / elapsed, 1),
        "load_1m": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline", type=Path, help="another checkout: its producer settings and processor")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-lowrate-") as tmp:
        work = Path(tmp)
        (work / "rules.yaml").write_text(BENCH_RULES)
        broker = KafkaBroker(work / "kafka").start(timeout=300)  # a loaded machine starts it slowly
        try:
            assert broker.pid is not None
            for _ in range(args.repeat):
                for baseline in [args.baseline, None] if args.baseline else [None]:
                    runs.append(
                        run_once(broker.bootstrap, broker.pid, args.rate, args.seconds, work, baseline)
                    )
        finally:
            broker.stop()
    report = {"scenario": "processor_broker", "rate": args.rate, "seconds": args.seconds, "runs": runs}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
