"""The processor's settings: the documented defaults, and exactly-once settings nobody overrides."""

from __future__ import annotations

import pytest

from tickpipe.config import ConfigError, load_settings
from tickpipe_processor.loop import consumer_config, producer_config
from tickpipe_processor.settings import ProcessorSettings


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METRICS_PORT", "PROCESSOR_GROUP_ID", "FILTER_RULES", "RAW_TOPIC", "FILTERED_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROCESSOR_INSTANCE_ID", "node-7")
    settings = load_settings(ProcessorSettings)
    assert settings.metrics_port == 9102
    assert settings.processor_group_id == "tickpipe-processor"
    assert settings.filter_rules is None
    assert settings.raw_topic == "polygon_stream_aggregates"
    assert settings.filtered_topic == "custom_filtered_stock_data_topic"
    assert settings.transactional_id == "tickpipe-processor-node-7"


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_BATCH_SIZE", "500")
    assert load_settings(ProcessorSettings, {"processor_batch_size": "700"}).processor_batch_size == 700


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCESSOR_BATCH_SIZE", "0")
    monkeypatch.setenv("PROCESSOR_MAX_MESSAGE_BYTES", "5000000")
    with pytest.raises(ConfigError) as caught:
        load_settings(ProcessorSettings)
    assert "PROCESSOR_BATCH_SIZE" in str(caught.value)
    assert "PROCESSOR_MAX_MESSAGE_BYTES" in str(caught.value)


def test_passthrough_tunes_but_cannot_break_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_ISOLATION_LEVEL", "read_uncommitted")
    monkeypatch.setenv("KAFKA_ENABLE_AUTO_COMMIT", "true")
    monkeypatch.setenv("KAFKA_FETCH_WAIT_MAX_MS", "7")
    monkeypatch.setenv("KAFKA_TRANSACTIONAL_ID", "someone-else")
    settings = load_settings(ProcessorSettings, {"processor_instance_id": "a"})
    consumer = consumer_config(settings)
    assert consumer["isolation.level"] == "read_committed"
    assert consumer["enable.auto.commit"] is False
    assert consumer["fetch.wait.max.ms"] == "7"
    assert consumer["group.instance.id"] == "a"
    assert producer_config(settings)["transactional.id"] == "tickpipe-processor-a"


def test_a_full_prefetch_queue_is_refilled_within_a_batch_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka postpones the next fetch by `fetch.queue.backoff.ms` (1 s unless set) once the
    prefetch queue is full; under a backlog the loop drains it long before that and would then wait
    in consume(). The backoff must be far shorter than one batch wait."""
    monkeypatch.setenv("PROCESSOR_INSTANCE_ID", "a")
    settings = load_settings(ProcessorSettings)
    consumer = consumer_config(settings)
    assert consumer["fetch.queue.backoff.ms"] * 10 <= settings.processor_batch_ms
    assert consumer["queued.max.messages.kbytes"] <= 8 * 1024  # the peak-RSS bound stays
