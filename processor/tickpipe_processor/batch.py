"""One batch of raw messages in, normalised events and dead letters out.

The batch step knows nothing of transactions: it is handed the consumed messages and a `produce`
function, and reports what it did. The transactional loop (loop.py) wraps it, so this logic runs
in unit tests against a list-backed fake producer.

No message stops a batch: each one is an output, a filtered drop, or a dead letter. Before decoding,
its size, nesting depth and receive header are bounded (guards.py); after normalising, every value
is checked against its ClickHouse column (bounds.py); any other exception while handling it makes it
a dead letter with the reason `unprocessable`.

This is the hot loop (every message passes through it), so it is written for speed: local names
for everything called per message, one msgspec decode per value (measured faster here than one
decode of the whole batch joined into an array, which also needs a second pass when one value is
bad), no per-message delivery callback (the transaction commit reports delivery failures).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tickpipe import contract
from tickpipe_processor.bounds import Bounds
from tickpipe_processor.events import DECODE_ERRORS, RawEvent, decode, encode
from tickpipe_processor.filters import PartitionMemory, RuleFilter
from tickpipe_processor.guards import MAX_DEPTH, MAX_NS_DIGITS, check_depth
from tickpipe_processor.guards import received_ns as read_received_ns
from tickpipe_processor.invalid import Invalid, from_msgspec_error, unprocessable

RECEIVED_HEADER = contract.RECEIVED_NS


class Message(Protocol):
    """The parts of confluent_kafka.Message the batch step reads."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes]] | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def error(self) -> Any: ...


class Produce(Protocol):
    def __call__(
        self, topic: str, value: bytes, key: bytes | str | None = ..., *, headers: Any = ...
    ) -> None: ...


@dataclass
class BatchReport:
    """What one batch did, for the metrics. (Offsets come from the consumer's positions.)"""

    consumed: int = 0
    produced: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    errors: list[Any] = field(default_factory=list)  # KafkaError events met in the batch


class BatchStep:
    """Validate, normalise and filter raw messages from `source_topic`; see module docstring."""

    def __init__(
        self,
        rule_filter: RuleFilter,
        source_topic: str,
        filtered_topic: str,
        dlq_topic: str,
        max_message_bytes: int,
        bounds: Bounds | None = None,
    ) -> None:
        self.rule_filter = rule_filter
        self.bounds = bounds or Bounds()
        self.source_topic = source_topic
        self.filtered_topic = filtered_topic
        self.dlq_topic = dlq_topic
        self.max_message_bytes = max_message_bytes
        self.memories: dict[int, PartitionMemory] = {}

    def memory(self, partition: int) -> PartitionMemory:
        memory = self.memories.get(partition)
        if memory is None:
            memory = self.memories[partition] = PartitionMemory()
        return memory

    def run(self, messages: Sequence[Message], produce: Produce) -> BatchReport:
        report = BatchReport()
        filtered = report.filtered
        errors = report.errors
        out_topic = self.filtered_topic
        max_bytes = self.max_message_bytes
        checks = self.rule_filter.checks
        stateful = self.rule_filter.stateful
        decode_value = decode
        depth_guard = check_depth
        self.bounds.refresh()
        finders = self.bounds.finders
        memory = None
        for message in messages:
            if message.error() is not None:
                errors.append(message.error())  # an event, not a record: the loop decides
                continue
            value = message.value()
            try:
                if value is None:
                    raise Invalid("malformed_json", "the message has no value (a tombstone)")
                if len(value) > max_bytes:
                    raise Invalid("oversized", f"the value is {len(value)} bytes; the limit is {max_bytes}")
                if value.count(b"{") + value.count(b"[") > MAX_DEPTH:  # guards.check_depth's fast path
                    depth_guard(value)  # before anything recursive reads it
                received_ns = None
                headers = message.headers()
                if headers:
                    for name, header in headers:
                        if name == RECEIVED_HEADER:  # guards.received_ns, its fast path inlined
                            if header and len(header) <= MAX_NS_DIGITS and header.isdigit():
                                received_ns = int(header)
                            else:
                                received_ns = read_received_ns(header, RECEIVED_HEADER)
                            break
                try:
                    raw: RawEvent = decode_value(value)
                except DECODE_ERRORS as error:
                    raise from_msgspec_error(value, error) from None
                event = raw.normalised(received_ns)  # events.parse, inlined: a call less per message
                if finders[type(event)](event) is not None:  # Bounds.check, inlined
                    self.bounds.check(event)
                if stateful:
                    memory = self.memory(message.partition())  # type: ignore[arg-type]
                dropped_by = checks[type(raw)](event, value, memory)  # RuleFilter.drop_reason, inlined
            except Invalid as invalid:
                self._dead_letter(message, invalid, produce, report)
                continue
            except Exception as error:
                self._dead_letter(message, unprocessable(error), produce, report)
                continue
            if dropped_by is not None:
                filtered[dropped_by] += 1
                continue
            produce(out_topic, encode(event), event.symbol)
        report.consumed = len(messages) - len(errors)
        report.produced = report.consumed - report.filtered.total() - report.dead.total()
        return report

    def _dead_letter(self, message: Message, invalid: Invalid, produce: Produce, report: BatchReport) -> None:
        headers = contract.dead_letter_headers(
            message.headers(),
            invalid.reason,
            invalid.detail,
            self.source_topic,
            message.partition(),
            message.offset(),
        )
        produce(self.dlq_topic, message.value() or b"", message.key(), headers=headers)
        report.dead[invalid.reason] += 1

    def commit(self) -> None:
        """The batch's transaction committed: its memory changes are now final."""
        for memory in self.memories.values():
            memory.commit(self.rule_filter.window_ms)

    def rollback(self) -> None:
        """The batch's transaction aborted: undo its memory changes (it will be processed again)."""
        for memory in self.memories.values():
            memory.rollback()

    def forget(self, partitions: Sequence[int]) -> None:
        """Partitions moved away (or arrived): their memory starts empty."""
        for partition in partitions:
            self.memories.pop(partition, None)
