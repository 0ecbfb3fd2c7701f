"""Settings of the sink, `tickpipe migrate` and `tickpipe query` (each also a CLI flag).

CLICKHOUSE_DSN may carry a password (`https://user:pass@host:8443/db`), so it is a SecretStr: it is
masked wherever settings are printed, and errors name the host, never the password.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from tickpipe import contract
from tickpipe_clickhouse.connect import ClickHouseLocation
from tickpipe_clickhouse.query.limits import (
    DEFAULT_MAX_EXECUTION_SECONDS,
    DEFAULT_MAX_MEMORY_BYTES,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_MAX_RESULT_ROWS,
    QueryLimits,
)


class ClickHouseSettings(ClickHouseLocation):
    """Where ClickHouse is (connect.ClickHouseLocation), and the query path's limits."""

    # The query path's limits (tickpipe query, the sink's endpoint): set at readonly=1, so a caller
    # cannot raise them (query/limits.py; a server's reader profile sets its own, migration 020).
    query_max_execution_seconds: int = Field(
        DEFAULT_MAX_EXECUTION_SECONDS, ge=1, description="query path: a query is cancelled after this long"
    )
    query_max_memory_bytes: int = Field(
        DEFAULT_MAX_MEMORY_BYTES, ge=1 << 20, description="query path: memory one query may use"
    )
    query_max_result_rows: int = Field(
        DEFAULT_MAX_RESULT_ROWS, ge=1, description="query path: rows in an answer"
    )
    query_max_result_bytes: int = Field(
        DEFAULT_MAX_RESULT_BYTES, ge=1 << 10, description="query path: bytes in an answer"
    )

    def query_limits(self) -> QueryLimits:
        return QueryLimits(
            self.query_max_execution_seconds,
            self.query_max_memory_bytes,
            self.query_max_result_rows,
            self.query_max_result_bytes,
        )


class MigrateSettings(ClickHouseSettings):
    """`tickpipe migrate`: the schema, and on a server the read-only user (migration 020)."""

    clickhouse_reader_user: str = Field(
        "tickpipe_query", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="server: the read-only login user"
    )
    clickhouse_reader_password: SecretStr | None = Field(
        None, description="server: create/update the read-only user with this password (unset = skip)"
    )


class SinkSettings(ClickHouseSettings):
    """`tickpipe sink`: FILTERED_TOPIC -> ClickHouse, exactly once."""

    metrics_port: int = Field(9103, ge=0, le=65535, description="Prometheus /metrics and /healthz; 0 = off")
    sink_group_id: str = Field("tickpipe-sink", min_length=1, description="Kafka consumer group")
    sink_instance_id: str | None = Field(
        None, description="Kafka static membership (group.instance.id): a restart rejoins without a rebalance"
    )
    # Unset, it depends on where ClickHouse runs (batch_rows()); measured in docs/clickhouse.md.
    sink_batch_rows: int | None = Field(
        None, ge=1, description="flush at this many buffered rows; default 100000 on chdb://, else 50000"
    )
    sink_batch_bytes: int = Field(64 * 1024 * 1024, ge=1, description="flush at this many buffered bytes")
    # 0.3 s: at 10k events/s, event -> queryable p99 under a second with the tables inserted at
    # once, for about the sink CPU 0.5 s took (docs/benchmarks.md, "p99 at 10k events/s").
    sink_batch_seconds: float = Field(
        0.3, gt=0, le=60, description="flush when the oldest buffered row is this old"
    )
    sink_insert_sessions: int = Field(
        3,
        ge=1,
        le=8,
        description="sessions inserting at once: a batch's tables (trades, quotes, ...) and the batches of"
        " different partitions; 1 = in turn",
    )
    sink_dlq_topic: str | None = Field(
        None, description="rows ClickHouse rejects; default <FILTERED_TOPIC>.dlq"
    )
    sink_retry_max_seconds: float = Field(30.0, gt=0, description="longest back-off between write retries")
    gap_states_topic: str = Field(
        contract.GAP_STATES_TOPIC,
        description="each feed gap's state from `tickpipe repair`, stored in feed_gaps; empty = not read",
    )
    sink_chdb_wait_seconds: float = Field(
        60.0,
        ge=0,
        description="chdb:// only: how long to wait at start for a folder another process (a query) holds",
    )
    sink_query_port: int = Field(
        0, ge=0, le=65535, description="chDB mode: loopback port of the read-only query endpoint; 0 = any"
    )
    sink_query_workers: int = Field(
        4, ge=1, le=64, description="chDB mode: queries the endpoint runs at once (one chDB session each)"
    )
    raw_ttl_days: int = Field(0, ge=0, description="drop raw rows older than this many days; 0 = keep all")

    @property
    def embedded(self) -> bool:
        from tickpipe_clickhouse.connect import Target

        return Target(self.clickhouse_dsn.get_secret_value()).embedded

    def batch_rows(self) -> int:
        """SINK_BATCH_ROWS, else the default for where ClickHouse runs.

        Embedded (chDB), inserts are the sink's own CPU and larger ones cost less per row, so 100k.
        The rows are buffered over all partitions and each partition's share is its own insert (25k
        rows over 4 partitions); 400k measured 3-44% more rows per CPU-second for 110-170 MB more
        peak RSS (docs/benchmarks.md), not taken. Against a server, the sink's memory is the budget
        (≤ 200 MB): two batches live at once, about 1.2 KB per row of this setting, so 50k (with a
        16 MiB prefetch, 170-174 MB on a full backlog against 264 MB with 100k; docs/benchmarks.md).
        """
        if self.sink_batch_rows is not None:
            return self.sink_batch_rows
        return 100_000 if self.embedded else 50_000

    def effective(self) -> dict[str, Any]:
        return {**super().effective(), "sink_batch_rows": self.batch_rows()}

    def dlq(self) -> str:
        from tickpipe.contract import dlq_topic

        return self.sink_dlq_topic or dlq_topic(self.filtered_topic)
