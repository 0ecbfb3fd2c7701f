"""One way to reach ClickHouse: clickhouse-connect, over HTTP(S) or into embedded chDB.

The sink, `migrate` and `query` all open their client here, so `http(s)://` and `chdb://` share one
code path above this module. Only two things differ for chDB: the DSN names a folder, and that folder
can be opened by one process at a time (and a process can open only one folder in its lifetime).
A caller that may meet a short-lived holder (the sink starting while a `tickpipe query` runs) passes
`wait_seconds`: the folder's lock (ClickHouse's flock on its `status` file) is then waited for, with
a log line, until it is free or the deadline passes.
"""

from __future__ import annotations

import fcntl
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from tickpipe.config import BaseServiceSettings, ConfigError, mask_url

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The insert settings of every deduplicated write into tickpipe's tables (the sink's and the
# backfill's): a retried block with the same token is dropped, in every materialized view too.
INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "input_format_skip_unknown_fields": 1,
    "input_format_null_as_default": 1,
    "async_insert": 0,
}


class ClickHouseLocation(BaseServiceSettings):
    """Where ClickHouse is: a server over HTTP(S) or the embedded chDB engine in a local folder.

    The settings of every command that connects derive from it (the sink, migrate, query, backfill).
    """

    clickhouse_dsn: SecretStr = Field(
        SecretStr("chdb://./data/clickhouse"),
        description="chdb://PATH (embedded, a folder) or http(s)://user:pass@host:8123/db",
    )
    clickhouse_database: str = Field("tickpipe", description="database holding tickpipe's tables")

    @field_validator("clickhouse_dsn")
    @classmethod
    def _known_scheme(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0].lower()
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(f"scheme must be chdb://, http:// or https:// (got {scheme or 'none'!r})")
        return value

    @field_validator("clickhouse_database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("must be letters, digits and underscores, not starting with a digit")
        return value


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse could not be reached or opened; the message names where (never a password)."""


@dataclass(frozen=True)
class Target:
    """A parsed CLICKHOUSE_DSN: either an embedded folder or a server URL."""

    dsn: str

    @property
    def embedded(self) -> bool:
        return self.dsn.lower().startswith("chdb://")

    @property
    def folder(self) -> Path:
        """chdb://./data/clickhouse -> ./data/clickhouse (resolved); chdb:///abs -> /abs."""
        if not self.embedded:
            raise ValueError("only chdb:// DSNs name a folder")
        rest = self.dsn[len("chdb://") :].split("?", 1)[0]
        if not rest:
            raise ConfigError("CLICKHOUSE_DSN: chdb:// needs a folder, e.g. chdb://./data/clickhouse")
        return Path(rest).expanduser().resolve()

    def shown(self) -> str:
        """The DSN as it may appear in logs and errors: password masked."""
        return mask_url(self.dsn)


def connect(
    dsn: str,
    database: str | None = None,
    settings: dict[str, Any] | None = None,
    wait_seconds: float = 0.0,
) -> Any:
    """A clickhouse-connect client for `dsn`, using `database` if given (it must exist).

    With `wait_seconds`, a chDB folder held by another process is waited for up to that long. (Only
    for a process's first open of its folder: its own later opens would look held by itself.)"""
    import clickhouse_connect

    target = Target(dsn)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if target.embedded:
                folder = target.folder
                folder.mkdir(parents=True, exist_ok=True)
                if wait_seconds:
                    wait_for_folder(folder, max(0.0, deadline - time.monotonic()))
                client = clickhouse_connect.get_client(
                    interface="chdb", path=str(folder), database=database, settings=settings or {}
                )
            else:
                client = clickhouse_connect.get_client(dsn=dsn, database=database, settings=settings or {})
        except ConfigError:
            raise
        except Exception as exc:
            explained = _explain(target, exc)
            if target.embedded and _HELD in explained and time.monotonic() < deadline:
                time.sleep(_POLL_SECONDS)  # taken between the check and the open: wait again
                continue
            raise ClickHouseUnavailable(explained) from None
        return client


_HELD = "another process holds it"
_POLL_SECONDS = 0.2


def folder_held(folder: Path) -> bool:
    """Does another open file hold the chDB folder's lock (the flock on `status`)?"""
    try:
        with open(folder / "status", "rb") as status:
            try:
                fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(status, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False


def wait_for_folder(folder: Path, seconds: float) -> bool:
    """Wait until the folder is free or `seconds` passed (logged once); True if it is free."""
    deadline = time.monotonic() + seconds
    logged = False
    while folder_held(folder):
        if time.monotonic() >= deadline:
            return False
        if not logged:
            log.warning(
                "the chDB folder is held by another process (a `tickpipe query`?); waiting for it",
                extra={"fields": {"folder": str(folder), "wait_seconds": seconds}},
            )
            logged = True
        time.sleep(_POLL_SECONDS)
    if logged:
        log.info("the chDB folder is free; opening it", extra={"fields": {"folder": str(folder)}})
    return True


def _explain(target: Target, exc: Exception) -> str:
    text = str(exc)
    if target.embedded and ("EmbeddedServer" in text or "Unable to open the chdb engine" in text):
        return (
            f"cannot open the chDB folder {target.folder}: {_HELD} (a running "
            "`tickpipe sink`?) or this process already opened a different folder"
        )
    return f"cannot connect to ClickHouse at {target.shown()}: {type(exc).__name__}: {_scrub(text, target)}"


def _scrub(text: str, target: Target) -> str:
    """Drop the DSN's password if a driver message echoed it."""
    from urllib.parse import urlsplit

    password = urlsplit(target.dsn).password if not target.embedded else None
    return text.replace(password, "***") if password else text
