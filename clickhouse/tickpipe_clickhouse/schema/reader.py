"""The login user of the read-only role (migration 020), for `tickpipe query` and Grafana on a server.

`tickpipe migrate` calls `ensure_reader_user` when CLICKHOUSE_READER_PASSWORD is set: the user is
created (or its password reset) with the role `tickpipe_reader` as its only, default role and
tickpipe's database as its default. The password travels as a quoted SQL literal (CREATE USER takes
no bound parameters) and is never logged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

READER_ROLE = "tickpipe_reader"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_literal(text: str) -> str:
    """A ClickHouse string literal: backslashes and quotes escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def reader_user_statements(user: str, password: str, database: str) -> list[str]:
    if not _NAME.match(user) or not _NAME.match(database):
        raise ValueError("the reader user and the database must be letters, digits and underscores")
    if not password:
        raise ValueError("the reader user needs a password")
    secret = f"IDENTIFIED WITH sha256_password BY {quote_literal(password)}"
    return [
        f"CREATE USER IF NOT EXISTS {user} {secret} DEFAULT DATABASE `{database}`",
        f"ALTER USER {user} {secret} DEFAULT DATABASE `{database}`",
        f"GRANT {READER_ROLE} TO {user}",
        f"ALTER USER {user} DEFAULT ROLE {READER_ROLE}",
    ]


def ensure_reader_user(client: Any, user: str, password: str, database: str) -> None:
    for statement in reader_user_statements(user, password, database):
        client.command(statement)
    log.info("reader user %s has the role %s", user, READER_ROLE, extra={"fields": {"database": database}})
