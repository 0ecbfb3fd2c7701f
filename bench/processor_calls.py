"""What the processor's Kafka calls cost its Python thread, per message (no processing).

    python -m bench.processor_calls [--messages 1000000] [--repeat 2]

Preloads a 4-partition raw topic (bench/processor_data.py: two headers per message, as the producer
writes them), then reads all of it with the processor's consumer settings, once per variant:
`consume` only, then `consume` and one accessor of each message (`error`, `value`, `headers`, `key`,
`timestamp`). Each variant's figure is the calling thread's CPU per message (`time.thread_time`:
librdkafka's own threads, which fetch and decompress, are not in it). Then the same 200k
normalised values produced one `produce()` call each against `produce_batch()` of 10k-message lists
(the thread's CPU again). Uses KAFKA_BOOTSTRAP_SERVERS, else starts a local broker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from bench.common import dumps, kafka, machine
from bench.processor import preload
from tickpipe.kafka import ensure_topics

ACCESSORS = ("error", "value", "headers", "key", "timestamp")
PRODUCED = 200_000
VALUE = (
    b'{"ev":"T","symbol":"SYM001","ts_ms":1763996400000,"price":101.23,"size":100.0,"exchange":4,'
    b'"trade_id":"123","tape":3,"conditions":[12,37],"sequence":123,"received_ns":1763996400000000000}'
)


def _consumer(bootstrap: str) -> Consumer:
    """The processor's fetch settings (tickpipe_processor/loop.py), a fresh group."""
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"calls-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": "read_committed",
         "fetch.wait.max.ms": 100, "fetch.min.bytes": 256 * 1024, "max.partition.fetch.bytes": 1024 * 1024,
         "queued.max.messages.kbytes": 4 * 1024, "fetch.queue.backoff.ms": 2}
    )  # fmt: skip


def _read_all(bootstrap: str, topic: str, count: int, accessor: str | None) -> float:
    """The thread's CPU µs per message to consume `count` messages (and call `accessor` on each)."""
    consumer = _consumer(bootstrap)
    consumer.subscribe([topic])
    got, started = 0, None
    try:
        while got < count:
            messages = consumer.consume(20_000, 0.05)
            if messages and started is None:
                started = time.thread_time()  # from the first batch: not the group join
            if accessor is not None:
                for message in messages:
                    getattr(message, accessor)()
            got += len(messages)
    finally:
        consumer.close()
    return round((time.thread_time() - (started or 0.0)) / count * 1e6, 3)


def _produce_costs(bootstrap: str) -> dict[str, float]:
    topic = f"calls-out-{uuid.uuid4().hex[:8]}"
    ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=4)
    keys = [f"SYM{i % 500:03d}" for i in range(PRODUCED)]
    config = {"bootstrap.servers": bootstrap, "linger.ms": 200, "queue.buffering.max.messages": 2 * PRODUCED}
    producer = Producer(config)
    started = time.thread_time()
    for key in keys:
        producer.produce(topic, VALUE, key)
    one_by_one = (time.thread_time() - started) / PRODUCED * 1e6
    producer.flush(60)
    started = time.thread_time()
    for i in range(0, PRODUCED, 10_000):
        producer.produce_batch(topic, [{"value": VALUE, "key": key} for key in keys[i : i + 10_000]])
    batched = (time.thread_time() - started) / PRODUCED * 1e6
    producer.flush(60)
    return {"produce_us_per_msg": round(one_by_one, 3), "produce_batch_us_per_msg": round(batched, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, kafka(Path(tmp)) as broker:
        topic = f"calls-raw-{uuid.uuid4().hex[:8]}"
        ensure_topics({"bootstrap.servers": broker.bootstrap}, [topic], partitions=4)
        preload(broker.bootstrap, topic, args.messages)
        for _ in range(args.repeat):
            run: dict[str, Any] = {}
            for accessor in (None, *ACCESSORS):
                name = f"consume_and_{accessor}" if accessor else "consume"
                run[f"{name}_us_per_msg"] = _read_all(broker.bootstrap, topic, args.messages, accessor)
            run |= _produce_costs(broker.bootstrap)
            runs.append(run)
    result = {"scenario": "processor_calls", "messages": args.messages, "runs": runs, "machine": machine()}
    print(dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
