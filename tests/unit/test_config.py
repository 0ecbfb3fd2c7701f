"""The settings layer: precedence, masking, and errors that name the variable (never a secret)."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field, SecretStr, model_validator

from tickpipe.config import (
    BaseServiceSettings,
    ConfigError,
    add_settings_flags,
    flag_overrides,
    kafka_passthrough,
    load_settings,
    mask_url,
)


class DemoSettings(BaseServiceSettings):
    polygon_api_key: SecretStr = Field(SecretStr(""), description="secret")
    polygon_secure: bool = True
    batch_rows: int = Field(100, gt=0)


def test_environment_then_flags_take_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    monkeypatch.setenv("BATCH_ROWS", "7")
    settings = load_settings(DemoSettings, {"batch_rows": "9"})
    assert settings.kafka_bootstrap_servers == "env-broker:9092"
    assert settings.batch_rows == 9
    assert settings.raw_topic == "polygon_stream_aggregates"


def test_invalid_value_names_the_variable_and_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYGON_SECURE", "maybe")
    monkeypatch.setenv("BATCH_ROWS", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings(DemoSettings)
    message = str(caught.value)
    assert "POLYGON_SECURE" in message
    assert "'maybe'" in message
    assert "BATCH_ROWS" in message


def test_secret_value_never_appears_in_errors_or_effective_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "sk-very-secret")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "kafka-pass-123")
    monkeypatch.setenv("BATCH_ROWS", "zero")
    with pytest.raises(ConfigError) as caught:
        load_settings(DemoSettings)
    assert "sk-very-secret" not in str(caught.value)
    monkeypatch.setenv("BATCH_ROWS", "5")
    shown = repr(load_settings(DemoSettings).effective())
    assert "sk-very-secret" not in shown
    assert "kafka-pass-123" not in shown
    assert "'polygon_api_key': '***'" in shown


class CheckedSettings(DemoSettings):
    @model_validator(mode="after")
    def _secure_needs_a_key(self) -> CheckedSettings:
        if self.polygon_secure and self.batch_rows == 13:
            raise ValueError("batch_rows 13 is unlucky")
        return self


def test_a_model_level_error_never_shows_the_settings_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model validator's input is every setting at once, secrets included."""
    monkeypatch.setenv("POLYGON_API_KEY", "sk-very-secret")
    monkeypatch.setenv("BATCH_ROWS", "13")
    with pytest.raises(ConfigError) as caught:
        load_settings(CheckedSettings)
    assert "unlucky" in str(caught.value)
    assert "sk-very-secret" not in str(caught.value)


def test_kafka_passthrough_maps_to_librdkafka_names() -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "OTHER": "x",
           "KAFKA_BOOTSTRAP_SERVERS": "b:9092"}  # fmt: skip
    assert kafka_passthrough(env) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}


def test_mask_url_hides_only_the_password() -> None:
    assert (
        mask_url("https://default:hunter2@ch.example.com:8443/ticks")
        == "https://default:***@ch.example.com:8443/ticks"
    )
    assert mask_url("chdb:///data/clickhouse") == "chdb:///data/clickhouse"


def test_every_field_is_also_a_flag() -> None:
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, DemoSettings)
    args = parser.parse_args(["--kafka-bootstrap-servers", "flag:1", "--polygon-secure", "false"])
    assert flag_overrides(args) == {"kafka_bootstrap_servers": "flag:1", "polygon_secure": "false"}
    settings = load_settings(DemoSettings, flag_overrides(args))
    assert settings.polygon_secure is False
