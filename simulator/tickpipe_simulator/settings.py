"""`tickpipe simulate` settings: each a flag and an environment variable `SIMULATOR_<NAME>`."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from tickpipe.config import BaseServiceSettings
from tickpipe_simulator.faults import Fault
from tickpipe_simulator.kinds import MarketName
from tickpipe_simulator.rest_faults import RestFault
from tickpipe_simulator.spec import MarketSpec
from tickpipe_simulator.symbols import resolve_symbols


class SimulatorSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(**{**BaseServiceSettings.model_config, "populate_by_name": True})

    host: str = Field(
        "127.0.0.1", validation_alias=AliasChoices("simulator_host"), description="bind address"
    )
    port: int = Field(
        8765, ge=0, le=65535, validation_alias=AliasChoices("simulator_port"), description="port"
    )
    api_keys: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("simulator_api_keys"),
        description="accepted keys, comma separated; none = any non-empty key",
    )
    seed: int = Field(1, validation_alias=AliasChoices("simulator_seed"), description="random seed")
    market: MarketName = Field(
        "stocks", validation_alias=AliasChoices("simulator_market"), description="stocks, crypto or forex"
    )
    symbols: str | None = Field(
        None,
        validation_alias=AliasChoices("simulator_symbols"),
        description="a count of the market's default symbols or a list; none = all",
    )
    rate: float = Field(
        1000.0,
        ge=0,
        validation_alias=AliasChoices("simulator_rate"),
        description="trades + quotes per second",
    )
    profile: Literal["flat", "open"] = Field(
        "flat", validation_alias=AliasChoices("simulator_profile"), description="open = market-open burst"
    )
    start: str = Field(
        "now", validation_alias=AliasChoices("simulator_start"), description="virtual clock start (ISO or ms)"
    )
    session_seconds: int = Field(
        0, ge=0, validation_alias=AliasChoices("simulator_session_seconds"), description="0 = endless"
    )
    max_frame_events: int = Field(
        1000,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("simulator_max_frame_events"),
        description="per frame",
    )
    speed: float = Field(
        1.0, ge=0, validation_alias=AliasChoices("simulator_speed"), description="1 real time, 0 fast as read"
    )
    replay: Path | None = Field(
        None, validation_alias=AliasChoices("simulator_replay"), description="recording"
    )
    wait_for_subscriber: bool | None = Field(
        None,
        validation_alias=AliasChoices("simulator_wait_for_subscriber"),
        description="clock starts on subscribe",
    )
    auth_timeout: float = Field(10.0, gt=0, validation_alias=AliasChoices("simulator_auth_timeout"))
    max_connections_per_key: int = Field(
        1, ge=1, validation_alias=AliasChoices("simulator_max_connections_per_key")
    )
    max_buffer_bytes: int = Field(
        64 << 20, ge=1024, validation_alias=AliasChoices("simulator_max_buffer_bytes")
    )
    history_seconds: int = Field(6 * 3600, ge=1, validation_alias=AliasChoices("simulator_history_seconds"))
    rest_lag_seconds: int = Field(0, ge=0, validation_alias=AliasChoices("simulator_rest_lag_seconds"))
    tick_history_seconds: int = Field(
        900, ge=1, validation_alias=AliasChoices("simulator_tick_history_seconds")
    )
    compression: bool = Field(False, validation_alias=AliasChoices("simulator_compression"))
    faults: list[Fault] = Field(default_factory=list, validation_alias=AliasChoices("simulator_faults"))
    rest_faults: list[RestFault] = Field(
        default_factory=list, validation_alias=AliasChoices("simulator_rest_faults")
    )

    @field_validator("symbols")
    @classmethod
    def _symbols_resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        resolve_symbols(value, info.data.get("market", "stocks"))  # market is validated first
        return value

    @field_validator("start")
    @classmethod
    def _start_parses(cls, value: str) -> str:
        parse_start(value)
        return value

    @field_validator("replay")
    @classmethod
    def _replay_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such recording file: {value}")
        return value

    def key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip())

    def market_spec(self) -> MarketSpec:
        return MarketSpec(
            seed=self.seed,
            symbols=resolve_symbols(self.symbols, self.market),
            rate=self.rate,
            profile=self.profile,
            start_ms=parse_start(self.start),
            session_seconds=self.session_seconds,
            market=self.market,
        )


def parse_start(value: str) -> int:
    """ "now", Unix milliseconds or ISO 8601 (naive = UTC) -> a whole second in Unix ms."""
    text = value.strip()
    if text == "now":
        ms = int(time.time() * 1000)
    elif text.isdigit():
        ms = int(text)
    else:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"start must be 'now', Unix ms or ISO 8601 like 2024-11-22T14:30:00Z (got {value!r})"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        ms = int(moment.timestamp() * 1000)
    return ms - ms % 1000
