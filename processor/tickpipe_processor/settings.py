"""The processor's configuration: environment variables, each also a `tickpipe processor` flag."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime

from pydantic import Field

from tickpipe.config import BaseServiceSettings


def _default_instance_id() -> str:
    return socket.gethostname() or "local"


class ProcessorSettings(BaseServiceSettings):
    """How the processor connects, batches and commits (see docs/processor.md)."""

    filter_rules: str | None = Field(
        None, description="rules file: a path or s3://bucket/key (YAML); unset = built-in keep-all rules"
    )
    processor_group_id: str = Field("tickpipe-processor", min_length=1, description="consumer group")
    processor_transactional_id_prefix: str = Field(
        "tickpipe-processor",
        min_length=1,
        description="Kafka transactional.id = PREFIX-INSTANCE; keep it stable across restarts",
    )
    processor_instance_id: str | None = Field(
        None,
        min_length=1,
        description="this instance's name in the group; unique per running instance; unset = hostname",
    )
    processor_batch_size: int = Field(
        20_000, ge=1, le=500_000, description="most messages in one transaction"
    )
    # Under load a batch fills by size at once; the wait only matters once caught up, where it sets
    # how many transactions the broker serves per second (each costs it a fixed amount: markers on
    # every partition written, the coordinator's log) and the processor's share of the latency.
    # 100 ms: ten transactions a second when caught up (docs/benchmarks.md).
    processor_batch_ms: int = Field(
        100, ge=1, le=60_000, description="longest wait to fill a batch, milliseconds"
    )
    processor_transaction_timeout_ms: int = Field(
        15_000,
        ge=1_000,
        description="broker aborts a transaction left open this long (a crashed instance's leftovers)",
    )
    processor_max_message_bytes: int = Field(
        65_536,
        ge=64,
        le=1_000_000,  # a dead letter carries the value, and the producer's message.max.bytes is 1 MB
        description="raw values larger than this go to the DLQ as `oversized`",
    )
    processor_event_time_min: date = Field(
        date(1990, 1, 1), description="events timed before this day (UTC) go to the DLQ as `out_of_range`"
    )
    processor_event_time_ahead_s: int = Field(
        86_400, ge=0, description="events timed more than this many seconds after now go to the DLQ"
    )
    metrics_port: int = Field(9102, ge=0, le=65535, description="Prometheus /metrics and /healthz; 0 = off")

    @property
    def instance_id(self) -> str:
        """Static group member id and transactional id suffix: stable across this instance's restarts."""
        return self.processor_instance_id or _default_instance_id()

    @property
    def event_time_min_ms(self) -> int:
        start = datetime(*self.processor_event_time_min.timetuple()[:3], tzinfo=UTC)
        return int(start.timestamp() * 1000)

    @property
    def transactional_id(self) -> str:
        return f"{self.processor_transactional_id_prefix}-{self.instance_id}"
