"""Typed configuration: environment variables, each also a CLI flag (12-factor).

Every service has one frozen settings class derived from `BaseServiceSettings`. Values come from, in
order of precedence: a CLI flag, an environment variable, the default. (`tickpipe` reads
`.tickpipe/local.env`, written by `tickpipe local up`, into the environment before a command
runs, never overriding a variable that is set; in production that file does not exist.)
Secrets are `SecretStr` and are masked wherever configuration is printed or logged. An invalid
value raises `ConfigError`, which the CLI turns into exit code 2 with a message naming the
variable and what is wrong (never a secret's value).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tickpipe import contract

LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# librdkafka properties passed through from KAFKA_* variables (KAFKA_SASL_MECHANISM -> sasl.mechanism).
_KAFKA_OWN_VARS = {"KAFKA_BOOTSTRAP_SERVERS"}
_SECRET_WORDS = ("password", "secret", "key", "token", "credential")


class ConfigError(Exception):
    """Invalid configuration. The message names each bad variable; the CLI exits with code 2."""


class BaseServiceSettings(BaseSettings):
    """Settings shared by every tickpipe service (see the configuration table in the README)."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_file=None,
        validate_default=True,
    )

    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1, description="Kafka brokers")
    raw_topic: str = Field(contract.RAW_TOPIC, min_length=1, description="raw event topic")
    filtered_topic: str = Field(
        contract.FILTERED_TOPIC, min_length=1, description="normalised, filtered topic"
    )
    raw_topic_partitions: int = Field(
        4,
        ge=1,
        description="partitions of RAW_TOPIC when tickpipe creates it (processor instances scale to it)",
    )
    filtered_topic_partitions: int = Field(
        1, ge=1, description="partitions of FILTERED_TOPIC when tickpipe creates it (one sink instance each)"
    )
    aws_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto)")
    log_level: LogLevel = Field("INFO", description="log level")
    log_format: LogFormat = Field("json", description="json for services, text for humans")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics and /healthz; 0 = off")
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address /metrics and /healthz bind; the images set 0.0.0.0 (reached from outside)",
    )

    def kafka_config(self) -> dict[str, str]:
        """librdkafka settings common to every client: bootstrap plus KAFKA_* pass-through."""
        config = {"bootstrap.servers": self.kafka_bootstrap_servers}
        config.update(kafka_passthrough(os.environ))
        return config

    def topic_partitions(self) -> dict[str, int]:
        """Every topic of the pipeline with the partition count tickpipe creates it with.

        FILTERED_TOPIC defaults to one partition: the sink inserts each partition's batch on its
        own (that is what makes replays exact), so fewer partitions mean fewer, larger inserts,
        which ClickHouse wants (about one per second per table). Raise it to run more sinks.
        """
        return {
            self.raw_topic: self.raw_topic_partitions,
            self.filtered_topic: self.filtered_topic_partitions,
            contract.dlq_topic(self.raw_topic): 1,
            contract.dlq_topic(self.filtered_topic): 1,
        }

    def effective(self) -> dict[str, Any]:
        """The configuration as it is in force, secrets masked: what a service logs at start."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            shown[name] = mask_value(name, getattr(self, name))
        for key, value in kafka_passthrough(os.environ).items():
            shown[f"kafka:{key}"] = mask_value(key, value)
        return shown


def kafka_passthrough(environ: Mapping[str, str]) -> dict[str, str]:
    """KAFKA_SECURITY_PROTOCOL=SASL_SSL -> {"security.protocol": "SASL_SSL"} (librdkafka names)."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        upper = key.upper()
        if upper.startswith("KAFKA_") and upper not in _KAFKA_OWN_VARS:
            out[upper[len("KAFKA_") :].lower().replace("_", ".")] = value
    return out


def mask_value(name: str, value: Any) -> Any:
    """Mask secrets: SecretStr values, fields named like secrets, and passwords inside URLs."""
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    lowered = name.lower()
    if isinstance(value, str) and any(word in lowered for word in _SECRET_WORDS) and value:
        return "***"
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def mask_url(url: str) -> str:
    """http://user:pass@host:8123/db -> http://user:***@host:8123/db; anything else unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


S = TypeVar("S", bound=BaseServiceSettings)


def load_settings(cls: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """Build settings from flags (overrides), the environment, `.tickpipe/local.env` and defaults.

    Raises ConfigError with one line per bad variable, e.g.
    `POLYGON_SECURE: Input should be a valid boolean (got 'maybe')`.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return cls(**given)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(cls, exc)) from None


def describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = field.upper()
        message = error["msg"]
        # A model-level validator's input is the whole settings dict, secrets included: never shown.
        secret = not error["loc"] or _is_secret_field(cls, field)
        if not secret and "input" in error and error["type"] != "missing":
            message = f"{message} (got {error['input']!r})"
        lines.append(f"  {variable}: {message}")
    return "\n".join(lines)


def _is_secret_field(cls: type[BaseSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    if info is None:
        return any(word in field.lower() for word in _SECRET_WORDS)
    annotation = str(info.annotation)
    return "SecretStr" in annotation or any(word in field.lower() for word in _SECRET_WORDS)


# --- CLI flags ---------------------------------------------------------------------------------


def add_settings_flags(parser: argparse.ArgumentParser, cls: type[BaseServiceSettings]) -> None:
    """One `--flag-name` per settings field; the flag wins over the environment variable."""
    group = parser.add_argument_group("configuration (each flag is also an environment variable)")
    for name, info in cls.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = info.default
        if isinstance(default, SecretStr):
            default = "***"
        help_text = f"{info.description or name} [env {name.upper()}; default {default!r}]"
        group.add_argument(flag, dest=f"cfg_{name}", default=None, metavar=name.upper(), help=help_text)


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings values given as flags on this command line."""
    return {
        key[len("cfg_") :]: value
        for key, value in vars(args).items()
        if key.startswith("cfg_") and value is not None
    }


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a KEY=VALUE file (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values
