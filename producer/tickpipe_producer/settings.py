"""Producer configuration (see the configuration table in the README)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from tickpipe import contract
from tickpipe.config import BaseServiceSettings

Market = Literal["stocks", "crypto", "forex", "options", "indices"]


class ProducerSettings(BaseServiceSettings):
    polygon_api_key: SecretStr = Field(SecretStr(""), description="Polygon/Massive API key (secret)")
    polygon_feed: str = Field("socket.polygon.io", min_length=1, description="websocket host[:port]")
    polygon_secure: bool = Field(True, description="wss (true) or ws (false)")
    polygon_market: Market = Field("stocks", description="stocks, crypto, forex, ...")
    subscriptions_uri: str = Field("", description="s3://bucket/key.csv or a local path (required)")
    subscriptions_poll_seconds: float = Field(30.0, gt=0, description="how often to check the CSV for edits")
    queue_max_bytes: int = Field(8 * 1024 * 1024, gt=0, description="bound of the read-ahead queue")
    shutdown_grace_seconds: float = Field(10.0, ge=0, description="SIGTERM: time allowed to flush Kafka")
    delivery_timeout_seconds: float = Field(
        60.0, gt=0, description="how long Kafka delivery is retried before the producer gives up (fatal)"
    )
    reconnect_initial_seconds: float = Field(0.5, gt=0, description="first reconnect delay")
    reconnect_max_seconds: float = Field(30.0, gt=0, description="longest reconnect delay")
    max_reconnects: int = Field(0, ge=0, description="give up after this many reconnects in a row; 0 = never")
    metrics_port: int = Field(9101, ge=0, le=65535, description="Prometheus /metrics and /healthz; 0 = off")
    feed_gaps_topic: str = Field(
        contract.FEED_GAPS_TOPIC, min_length=1, description="each websocket gap, for `tickpipe repair`"
    )

    @field_validator("subscriptions_uri")
    @classmethod
    def _uri_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("required: s3://bucket/key.csv or a local path to the subscriptions CSV")
        if value.startswith("s3://") and "/" not in value.removeprefix("s3://").strip("/"):
            raise ValueError(f"needs a key after the bucket: {value!r}")
        return value.strip()

    @property
    def feed_label(self) -> str:
        """`host[:port]/market`: the `tp.feed` header on every raw message."""
        return f"{self.polygon_feed}/{self.polygon_market}"
