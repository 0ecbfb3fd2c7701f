"""What the processor's input checks (depth, header, column bounds, time window, symbols) cost.

    python -m bench.processor_checks --messages 200000 --repeat 3 [--before DIR]

Preloads a raw topic (bench/processor_data.py), then runs, each in its own process on the same
consumed messages (real confluent_kafka Messages, held in memory), the processor's batch step
with a no-op produce: `checks`, the current step; `no_bounds`, the same with the generated column
checks (bounds.py) replaced by none (the depth count and the header test are inline in the step
and stay); and with `--before DIR`, the batch step of another checkout (e.g. the commit before
the checks were added). Each process reports the best of 15 passes in CPU microseconds per
message (BENCH_PASSES overrides the 15); the variants alternate `--repeat` times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.processor import BENCH_RULES, SOURCE_FOLDERS, preload
from tickpipe.kafka import ensure_topics

PASSES = int(os.environ.get("BENCH_PASSES", "15"))


def _measure(bootstrap: str, topic: str, count: int, variant: str) -> dict[str, Any]:
    """In the child: consume `count` messages, then time the batch step on them."""
    from confluent_kafka import Consumer

    from tickpipe_processor import batch
    from tickpipe_processor.filters import RuleFilter
    from tickpipe_processor.rules import parse_rules

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"checks-{uuid.uuid4().hex}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + 120
    while len(messages) < count and time.monotonic() < deadline:
        messages.extend(m for m in consumer.consume(10_000, 1.0) if m.error() is None)
    consumer.close()
    step = batch.BatchStep(RuleFilter(parse_rules(BENCH_RULES)), topic, "out", "dlq", 65_536)
    if variant == "no_bounds":
        bounds = step.bounds
        bounds.finders = {kind: (lambda event: None) for kind in bounds.finders}
    produced = 0

    def produce(topic: str, value: bytes, key: Any = None, headers: Any = None) -> None:
        nonlocal produced
        produced += 1

    best = float("inf")
    for _ in range(PASSES):
        started = time.process_time()
        step.run(messages, produce)
        best = min(best, time.process_time() - started)
    return {"variant": variant, "messages": len(messages), "us_per_msg": round(best / len(messages) * 1e6, 3)}


def _child(bootstrap: str, topic: str, count: int, variant: str, source: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(str(source.resolve() / folder) for folder in SOURCE_FOLDERS)
    out = subprocess.run(
        [sys.executable, "-m", "bench.processor_checks", "--child", variant, "--topic", topic,
         "--messages", str(count), "--bootstrap", bootstrap],
        capture_output=True, check=True, env=env,
    )  # fmt: skip
    return dict(orjson.loads(out.stdout.splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose batch step is measured too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    args = parser.parse_args(argv)
    if not args.bootstrap:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS (a running broker)")
    if args.child:
        print(orjson.dumps(_measure(args.bootstrap, args.topic, args.messages, args.child)).decode())
        return 0
    topic = f"bench-checks-{uuid.uuid4().hex[:8]}"
    ensure_topics({"bootstrap.servers": args.bootstrap}, [topic], partitions=4)
    preload(args.bootstrap, topic, args.messages)
    variants: list[tuple[str, Path | None]] = [("checks", None), ("no_bounds", None)]
    if args.before:
        variants.append(("before", args.before))
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, source in variants:
            found = _child(
                args.bootstrap, topic, args.messages, "checks" if name == "before" else name, source
            )
            runs.setdefault(name, []).append(found["us_per_msg"])
    report = {
        "scenario": "processor_checks", "messages": args.messages, "us_per_msg": runs,
        "best": {name: min(values) for name, values in runs.items()}, "load_1m": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
