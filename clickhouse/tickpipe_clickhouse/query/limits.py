"""Limits every query-path session runs under, which the caller cannot raise, and how to open one.

A reader session sets the limits first and `readonly=1` last: from then on the session refuses
`SET` and `SETTINGS` (readonly=2 would let callers change settings, raise the limits and use
`file()`, `url()`, `INTO OUTFILE` and `KILL QUERY`). The operator sets the values through
QUERY_MAX_EXECUTION_SECONDS, QUERY_MAX_MEMORY_BYTES, QUERY_MAX_RESULT_ROWS and
QUERY_MAX_RESULT_BYTES (settings.py). Against a server whose reader user already runs at
readonly=1 (its settings profile, migration 020) the settings are the server's and none is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickpipe_clickhouse.connect import connect

DEFAULT_MAX_EXECUTION_SECONDS = 60
DEFAULT_MAX_MEMORY_BYTES = 1 << 30
DEFAULT_MAX_RESULT_ROWS = 10_000_000
DEFAULT_MAX_RESULT_BYTES = 256 << 20


@dataclass(frozen=True)
class QueryLimits:
    max_execution_seconds: int = DEFAULT_MAX_EXECUTION_SECONDS
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
    max_result_rows: int = DEFAULT_MAX_RESULT_ROWS
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    def session_settings(self) -> dict[str, Any]:
        """In the order they must be applied: `readonly` last, or the others could not be set."""
        return {
            "max_execution_time": self.max_execution_seconds,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "allow_introspection_functions": 0,  # chDB turns them on; they read the binary
            "readonly": 1,
        }


def open_reader(dsn: str, database: str | None, limits: QueryLimits) -> Any:
    """A clickhouse-connect session at readonly=1 with `limits` (those the server lets it set)."""
    client = connect(dsn, database)
    try:
        for key, value in limits.session_settings().items():
            known = client.server_settings.get(key)
            if known is not None and known.readonly:
                continue  # the server already fixes it (a readonly=1 profile): nothing to send
            client.set_client_setting(key, value)
        if str(client.query("SELECT getSetting('readonly')").result_rows[0][0]) == "0":
            raise RuntimeError("the query session did not become read-only")
    except Exception:
        client.close()
        raise
    return client
