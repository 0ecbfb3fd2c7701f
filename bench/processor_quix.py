"""The benchmark's peer: the same processor written as an idiomatic Quix Streams application.

Same topics, same rules, same validation and normalisation code (tickpipe_processor.events and
.filters), exactly-once processing, dead letters with the same headers. Only the streaming engine
differs: Quix calls the functions once per message; tickpipe works a batch per transaction.
Reads the processor's environment (KAFKA_BOOTSTRAP_SERVERS, RAW_TOPIC, FILTERED_TOPIC,
PROCESSOR_GROUP_ID, FILTER_RULES); run by bench/processor.py as `python -m bench.processor_quix`.
"""

from __future__ import annotations

import os
from typing import Any

from quixstreams import Application
from quixstreams.models.serializers import SerializationContext, Serializer

from tickpipe.contract import dead_letter_headers, dlq_topic
from tickpipe_processor.batch import RECEIVED_HEADER
from tickpipe_processor.events import encode, parse
from tickpipe_processor.filters import PartitionMemory, RuleFilter
from tickpipe_processor.invalid import Invalid
from tickpipe_processor.rules import load_rules


class PairValue(Serializer):
    """Values travel as (key, value bytes) so that `to_topic(key=...)` can pick the key."""

    def __call__(self, value: Any, ctx: SerializationContext) -> bytes:
        return bytes(value[1])


def main() -> None:
    raw_name = os.environ["RAW_TOPIC"]
    rule_filter = RuleFilter(load_rules(os.environ.get("FILTER_RULES")))
    memory = PartitionMemory() if rule_filter.stateful else None
    max_bytes = int(os.environ.get("PROCESSOR_MAX_MESSAGE_BYTES", "65536"))
    app = Application(
        broker_address=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        consumer_group=os.environ["PROCESSOR_GROUP_ID"],
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        consumer_extra_config={"isolation.level": "read_committed"},
        producer_extra_config={"compression.type": "lz4", "linger.ms": 10},
        loglevel="WARNING",
    )
    raw = app.topic(raw_name, value_deserializer="bytes", key_deserializer="bytes")
    out = app.topic(os.environ["FILTERED_TOPIC"], value_serializer=PairValue(), key_serializer="str")
    dead = app.topic(dlq_topic(raw_name) + ".quix", value_serializer=PairValue(), key_serializer="bytes")

    def handle(value: bytes, key: bytes, timestamp: int, headers: Any) -> tuple[str, Any, bytes, Any]:
        try:
            if len(value) > max_bytes:
                raise Invalid("oversized", f"the value is {len(value)} bytes")
            received = None
            for name, header in headers or ():
                if name == RECEIVED_HEADER:
                    received = int(header)
            raw_event, event = parse(value, received)
        except (Invalid, ValueError) as invalid:
            if not isinstance(invalid, Invalid):
                invalid = Invalid("bad_header", str(invalid))
            return (
                "dlq",
                key,
                value,
                dead_letter_headers(headers, invalid.reason, invalid.detail, raw_name, None, None),
            )
        if rule_filter.drop_reason(raw_event, event, value, memory) is not None:
            return "drop", key, value, None
        return "out", event.symbol, encode(event), None

    results = app.dataframe(raw).apply(handle, metadata=True)
    results.filter(lambda r: r[0] == "out").apply(lambda r: (r[1], r[2])).to_topic(out, key=lambda v: v[0])
    failures = results.filter(lambda r: r[0] == "dlq")
    failures = failures.set_headers(lambda value, key, timestamp, headers: value[3])
    failures.apply(lambda r: (r[1], r[2])).to_topic(dead, key=lambda v: v[0])
    app.run()


if __name__ == "__main__":
    main()
