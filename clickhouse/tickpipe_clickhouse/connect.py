"""One way to reach ClickHouse: clickhouse-connect, over HTTP(S) or into embedded chDB.

The sink, `migrate` and `query` all open their client here, so `http(s)://` and `chdb://` share one
code path above this module. Only two things differ for chDB: the DSN names a folder, and that folder
can be opened by one process at a time (and a process can open only one folder in its lifetime).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickpipe.config import ConfigError, mask_url

log = logging.getLogger(__name__)


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


def connect(dsn: str, database: str | None = None, settings: dict[str, Any] | None = None) -> Any:
    """A clickhouse-connect client for `dsn`, using `database` if given (it must exist)."""
    import clickhouse_connect

    target = Target(dsn)
    try:
        if target.embedded:
            folder = target.folder
            folder.mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(
                interface="chdb", path=str(folder), database=database, settings=settings or {}
            )
        else:
            client = clickhouse_connect.get_client(dsn=dsn, database=database, settings=settings or {})
    except ConfigError:
        raise
    except Exception as exc:
        raise ClickHouseUnavailable(_explain(target, exc)) from None
    return client


def _explain(target: Target, exc: Exception) -> str:
    text = str(exc)
    if target.embedded and ("EmbeddedServer" in text or "Unable to open the chdb engine" in text):
        return (
            f"cannot open the chDB folder {target.folder}: another process holds it (a running "
            "`tickpipe sink`?) or this process already opened a different folder"
        )
    return f"cannot connect to ClickHouse at {target.shown()}: {type(exc).__name__}: {_scrub(text, target)}"


def _scrub(text: str, target: Target) -> str:
    """Drop the DSN's password if a driver message echoed it."""
    from urllib.parse import urlsplit

    password = urlsplit(target.dsn).password if not target.embedded else None
    return text.replace(password, "***") if password else text
