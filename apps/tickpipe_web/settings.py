"""Settings of `tickpipe web` (each also a CLI flag)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from tickpipe_clickhouse.settings import ClickHouseSettings

MIN_TOKEN = 16


class WebSettings(ClickHouseSettings):
    """The live console: where it listens, who may look, and where the stages' metrics are."""

    web_host: str = Field("127.0.0.1", min_length=1, description="address to listen on (loopback by default)")
    web_port: int = Field(8765, ge=0, le=65535, description="port to listen on; 0 = any free port")
    web_token: SecretStr | None = Field(
        None,
        validate_default=True,  # so that a missing token beyond loopback is an error too
        description=f"required of every request when listening beyond loopback (min {MIN_TOKEN} characters)",
    )
    web_producer_metrics: str | None = Field(None, description="the producer's /metrics URL")
    web_processor_metrics: str | None = Field(None, description="the processor's /metrics URL")
    web_sink_metrics: str | None = Field(None, description="the sink's /metrics URL")
    processor_group_id: str = Field("tickpipe-processor", min_length=1, description="the processor's group")
    sink_group_id: str = Field("tickpipe-sink", min_length=1, description="the sink's consumer group")

    @field_validator("web_token")
    @classmethod
    def _token_beyond_loopback(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A field error on the token: the settings error report never echoes a secret field."""
        token = value.get_secret_value() if value is not None else ""
        if token and len(token) < MIN_TOKEN:
            raise ValueError(f"must be at least {MIN_TOKEN} characters")
        host = str(info.data.get("web_host", "127.0.0.1"))
        if not token and not is_loopback(host):
            raise ValueError(f"required when listening beyond loopback (WEB_HOST={host})")
        return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
