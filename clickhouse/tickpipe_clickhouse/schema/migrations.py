"""Ordered, idempotent schema migrations: `clickhouse/migrations/NNN_name.sql`, applied in order.

Each file is a list of statements separated by `;` at the end of a line, with `{db}` standing for
the target database. Every statement is idempotent (IF NOT EXISTS), so a migration cut short by a
crash simply runs again. `schema_migrations` records what ran, with a checksum so an edited,
already-applied file is reported instead of silently ignored. The sink runs this at start too.
A file whose first line starts with `-- server-only` (access management: roles, users, profiles)
is recorded but not run on the embedded engine, which has no users. A file whose first line is
`-- needs-merge-tree-setting: NAME` (a table setting newer than some servers) is skipped, and not
recorded, where `system.merge_tree_settings` has no NAME: it runs at a later start on a server that has.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickpipe_clickhouse.resources import sql_dir

log = logging.getLogger(__name__)

RAW_TABLES = ("aggregates", "trades", "quotes")
_FILE = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")
_NEEDS_SETTING = re.compile(r"^-- needs-merge-tree-setting: ([a-z0-9_]+)\s*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def server_only(self) -> bool:
        return self.sql.startswith("-- server-only")

    @property
    def needs_setting(self) -> str | None:
        """The MergeTree setting this migration sets that older servers do not know, if any."""
        match = _NEEDS_SETTING.match(self.sql.split("\n", 1)[0])
        return match.group(1) if match else None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        return split_statements(self.sql.replace("{db}", f"`{database}`"))


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """The migration files in version order; a badly named file or a repeated version is an error."""
    folder = folder or sql_dir("migrations")
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"{path}: version {version} is also {found[version].name}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Statements end with `;` at the end of a line; whole-line `--` comments are dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return [s for s in statements if s]


def migrate(client: Any, database: str, raw_ttl_days: int = 0) -> list[str]:
    """Create `database` and bring it to the newest schema; returns the names of migrations run now."""
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime('UTC') DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {
        int(version): checksum
        for version, checksum in client.query(
            f"SELECT version, any(checksum) FROM `{database}`.schema_migrations GROUP BY version"  # noqa: S608
        ).result_rows
    }
    ran = []
    for migration in load_migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                log.warning(
                    "migration %s changed after it was applied; write a new migration instead",
                    migration.name,
                    extra={"fields": {"database": database}},
                )
            continue
        if migration.needs_setting and not has_merge_tree_setting(client, migration.needs_setting):
            log.warning(
                "migration %s skipped: this ClickHouse has no MergeTree setting %s; it runs at a later "
                "start on a server that has it",
                migration.name,
                migration.needs_setting,
                extra={"fields": {"database": database}},
            )
            continue
        if migration.server_only and embedded(client):
            log.info("migration %s is for servers: nothing to do on chDB", migration.name)
        else:
            for statement in migration.statements(database):
                client.command(statement)
        client.insert(
            f"`{database}`.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        log.info("applied migration %s", migration.name, extra={"fields": {"database": database}})
        ran.append(migration.name)
    apply_raw_ttl(client, database, raw_ttl_days)
    return ran


def has_merge_tree_setting(client: Any, name: str) -> bool:
    """`system.merge_tree_settings` lists `name` on this server."""
    rows = client.query(
        "SELECT count() FROM system.merge_tree_settings WHERE name = {name:String}", parameters={"name": name}
    ).result_rows
    return bool(rows and rows[0][0])


def embedded(client: Any) -> bool:
    """The client runs on chDB in this process (clickhouse-connect's chdb:// interface)."""
    return str(getattr(client, "uri", "")).lower().startswith("chdb://")


def apply_raw_ttl(client: Any, database: str, days: int) -> None:
    """RAW_TTL_DAYS > 0 drops raw rows older than that (bars are kept); 0 removes a TTL set before.

    A TTL that moves parts (`TO VOLUME`, `TO DISK`: tiering to S3 on a server, docs/research.md) is
    the operator's, and is left as it is whatever RAW_TTL_DAYS says.
    """
    for table in RAW_TABLES:
        create = client.command(f"SHOW CREATE TABLE `{database}`.{table}")
        has_ttl = "TTL " in str(create)
        if has_ttl and ("TO VOLUME" in str(create) or "TO DISK" in str(create)):
            if days > 0:
                log.warning(
                    "%s has a TTL that moves parts; RAW_TTL_DAYS is not applied to it",
                    table,
                    extra={"fields": {"database": database, "raw_ttl_days": days}},
                )
            continue
        if days > 0 and f"toIntervalDay({int(days)})" in str(create):
            continue  # already in force; MODIFY TTL again would rewrite every part
        if days > 0:
            ttl = f"toDateTime(timestamp) + INTERVAL {int(days)} DAY"
            client.command(f"ALTER TABLE `{database}`.{table} MODIFY TTL {ttl}")
        elif has_ttl:
            client.command(f"ALTER TABLE `{database}`.{table} REMOVE TTL")
