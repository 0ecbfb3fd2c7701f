"""Saved queries: `clickhouse/queries/NAME.sql`, run by name with parameters bound by the driver.

A file starts with `-- NAME: what it answers`, then one `-- param NAME [= DEFAULT]: help` line per
parameter (`help` starting with "one of a, b, c" restricts the values). The SQL uses ClickHouse's
`{name:Type}` placeholders, so values travel as bound parameters, never as SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tickpipe_clickhouse.resources import sql_dir

_PARAM = re.compile(r"^--\s*param\s+(\w+)\s*(?:=\s*([^:]*?))?\s*:\s*(.*)$")
_TITLE = re.compile(r"^--\s*(\w+)\s*:\s*(.*)$")


class QueryParamError(ValueError):
    """A saved query was called with a missing, unknown or out-of-range parameter."""


@dataclass(frozen=True)
class Param:
    name: str
    default: str | None
    help: str

    @property
    def choices(self) -> list[str] | None:
        if not self.help.startswith("one of "):
            return None
        return [c.strip() for c in self.help[len("one of ") :].split(",")]


@dataclass(frozen=True)
class SavedQuery:
    name: str
    about: str
    params: tuple[Param, ...]
    sql: str

    def bind(self, given: Mapping[str, str]) -> dict[str, str]:
        """Defaults filled in and values checked; an error names the parameter and the query."""
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            raise QueryParamError(
                f"saved query {self.name!r} has no parameter {', '.join(unknown)} "
                f"(it takes: {', '.join(sorted(known)) or 'none'})"
            )
        bound = {}
        for param in self.params:
            value = given.get(param.name, param.default)
            if value is None:
                raise QueryParamError(
                    f"saved query {self.name!r} needs --param {param.name}=... ({param.help})"
                )
            if param.choices and value not in param.choices:
                raise QueryParamError(
                    f"saved query {self.name!r}: {param.name} must be {param.help[len('one of ') :]} "
                    f"(got {value!r})"
                )
            bound[param.name] = value
        return bound


def parse_saved(path: Path) -> SavedQuery:
    lines = path.read_text().splitlines()
    title = _TITLE.match(lines[0]) if lines else None
    if not title or title.group(1) != path.stem:
        raise ValueError(f"{path}: the first line must be '-- {path.stem}: what it answers'")
    params = []
    for line in lines[1:]:
        match = _PARAM.match(line)
        if match:
            params.append(Param(match.group(1), match.group(2), match.group(3).strip()))
    sql = "\n".join(line for line in lines if not line.startswith("--")).strip()
    return SavedQuery(path.stem, title.group(2).strip(), tuple(params), sql)


def saved_queries(folder: Path | None = None) -> dict[str, SavedQuery]:
    folder = folder or sql_dir("queries")
    return {path.stem: parse_saved(path) for path in sorted(folder.glob("*.sql"))}


def saved_query(name: str) -> SavedQuery:
    queries = saved_queries()
    if name not in queries:
        raise QueryParamError(f"no saved query {name!r}; saved queries: {', '.join(sorted(queries))}")
    return queries[name]
