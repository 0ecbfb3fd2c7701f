"""The sink's defaults depend on where ClickHouse runs: throughput into chDB, memory against a server."""

from __future__ import annotations

import pytest

from tickpipe_clickhouse.settings import SinkSettings
from tickpipe_clickhouse.sink.service import consumer_config


@pytest.mark.parametrize(
    ("dsn", "rows", "prefetch_kb"),
    [("chdb:///tmp/ch", 100_000, 32 * 1024), ("https://user:secret@ch.example.com:8443", 50_000, 16 * 1024)],
)
def test_batch_and_prefetch_defaults_follow_the_dsn(dsn: str, rows: int, prefetch_kb: int) -> None:
    settings = SinkSettings(clickhouse_dsn=dsn)
    assert settings.batch_rows() == rows
    assert settings.effective()["sink_batch_rows"] == rows
    assert consumer_config(settings)["queued.max.messages.kbytes"] == str(prefetch_kb)
    assert "secret" not in str(settings.effective())


def test_a_batch_size_that_is_set_wins() -> None:
    settings = SinkSettings(clickhouse_dsn="http://ch:8123", sink_batch_rows=7)
    assert settings.batch_rows() == 7


def test_a_full_prefetch_queue_is_refilled_within_a_poll_while_an_insert_runs() -> None:
    """Under a backlog the queue is full whenever an insert runs (the batcher reads no more), and
    librdkafka then postpones the next fetch by `fetch.queue.backoff.ms` (1 s unless set): the
    sink would drain the queue and wait in consume(). The backoff must be far shorter than the
    sink's shortest poll while a write is in flight."""
    from tickpipe_clickhouse.sink.sink import BUSY_POLL_SECONDS

    consumer = consumer_config(SinkSettings(clickhouse_dsn="chdb:///tmp/ch"))
    assert int(consumer["fetch.queue.backoff.ms"]) * 5 <= BUSY_POLL_SECONDS * 1000
