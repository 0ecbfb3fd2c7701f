"""Opening ClickHouse for the backfill: the one module that reaches into tickpipe_clickhouse
(its connect helper and its schema migrations), so the tables exist before anything is written."""

from __future__ import annotations

from typing import Any

from tickpipe_clickhouse.connect import ClickHouseUnavailable, connect
from tickpipe_clickhouse.schema.migrations import migrate

__all__ = ["ClickHouseUnavailable", "open_client"]


def open_client(dsn: str, database: str) -> Any:
    """A clickhouse-connect client on `database`, migrated to the newest schema."""
    client = connect(dsn)
    migrate(client, database)
    return client
