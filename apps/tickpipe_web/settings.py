"""Settings of `tickpipe web` (each also a CLI flag)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, model_validator

from tickpipe_clickhouse.settings import ClickHouseSettings


class WebSettings(ClickHouseSettings):
    """The live console: where it listens, who may look, and where the stages' metrics are."""

    web_host: str = Field("127.0.0.1", min_length=1, description="address to listen on (loopback by default)")
    web_port: int = Field(8765, ge=0, le=65535, description="port to listen on; 0 = any free port")
    web_token: SecretStr | None = Field(
        None, description="required of every request when listening beyond loopback (min 16 characters)"
    )
    web_producer_metrics: str | None = Field(None, description="the producer's /metrics URL")
    web_processor_metrics: str | None = Field(None, description="the processor's /metrics URL")
    web_sink_metrics: str | None = Field(None, description="the sink's /metrics URL")
    processor_group_id: str = Field("tickpipe-processor", min_length=1, description="the processor's group")
    sink_group_id: str = Field("tickpipe-sink", min_length=1, description="the sink's consumer group")

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> WebSettings:
        token = self.web_token.get_secret_value() if self.web_token else ""
        if token and len(token) < 16:
            raise ValueError("WEB_TOKEN must be at least 16 characters")
        if not is_loopback(self.web_host) and not token:
            raise ValueError(f"listening on {self.web_host} (beyond loopback) needs WEB_TOKEN")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
