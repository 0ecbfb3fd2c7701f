"""The read-only guard: ClickHouse's own parser decides whether a query may run on the query path.

Every query of `tickpipe query`, the sink's endpoint and anything built on the query client passes
`check` first. Two calls to the same engine that will run the query, neither of which executes it:

1. `SELECT formatQuery({q:String})` with the text as a bound parameter: ClickHouse parses it as one
   statement (it refuses multi-statements, which chDB would otherwise run one after the other) and
   prints it back canonically: comments gone, literals escaped, one clause per line. The canonical
   text is what runs, so what was checked is exactly what executes.
2. `EXPLAIN AST <canonical>` (parameters bound): the parse tree, walked here.

Allowed: SELECT / WITH (any UNION, INTERSECT, EXCEPT), SHOW (tables, databases, columns, create,
processlist, ...), DESCRIBE, EXISTS and EXPLAIN of those. Refused anywhere in the tree, however deep
(subqueries, CTEs, JOINs, `IN (...)`, `view()`): a table function outside `ALLOWED_TABLE_FUNCTIONS`,
a function in `DENIED_FUNCTIONS` (every other table function's name, the scalar `file()`, the
dictionary functions, functions that reach other servers or the binary), `INTO OUTFILE`, a `FORMAT`
clause (the format is chosen from `OUTPUT_FORMATS`) and any `SETTINGS` clause (limits are the
operator's). The session itself runs at `readonly=1` with the limits of `limits.py`, so what this
module misses ClickHouse still refuses (writes, settings); on a server the reader role is the third
layer (clickhouse/migrations/020_reader_role.sql).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_QUERY_BYTES = 256 * 1024  # ClickHouse's own max_query_size default

# Table functions that read nothing but their arguments or other (checked) SQL.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "generate_series", "generateseries", "primes", "values", "generaterandom",
     "null", "view", "viewifpermitted"}
)  # fmt: skip

# Every table function chDB 26.9 knows (system.table_functions), lower-cased. A test compares this
# with the engine, so a table function added by an upgrade is classified on purpose, not by accident.
KNOWN_TABLE_FUNCTIONS = frozenset(
    {"sqlstandardvalues", "arrowstream", "azureblobstorage", "azureblobstoragecluster", "bigquery", "cluster",
     "clusterallreplicas", "cosn", "deltalake", "deltalakeazure", "deltalakeazurecluster", "deltalakecluster",
     "deltalakelocal", "deltalakes3", "deltalakes3cluster", "dictionary", "eval", "executable", "file",
     "filecluster", "filesystem", "format", "fuzzjson", "fuzzquery", "gcs", "generaterandom",
     "generateseries", "generate_series", "hdfs", "hdfscluster", "hudi", "hudicluster", "iceberg",
     "icebergazure",
     "icebergazurecluster", "icebergcluster", "iceberghdfs", "iceberghdfscluster", "iceberglocal",
     "iceberglocalcluster", "icebergs3", "icebergs3cluster", "input", "jdbc", "loop", "merge",
     "mergetreeanalyzeindexes", "mergetreeanalyzeindexesuuid", "mergetreecodecblockcounts", "mergetreeindex",
     "mergetreeprojection", "mergetreetextindex", "mongodb", "mysql", "null", "numbers", "numbers_mt", "odbc",
     "oss", "paimon", "paimonazure", "paimonazurecluster", "paimoncluster", "paimonhdfs", "paimonhdfscluster",
     "paimonlocal", "paimons3", "paimons3cluster", "postgresql", "primes", "prometheusquery",
     "prometheusqueryrange", "python", "redis", "remote", "remotesecure", "s3", "s3cluster", "sqlite",
     "timeseriesdata", "timeseriesmetricfamilies", "timeseriesmetrics", "timeseriessamples",
     "timeseriesselector", "timeseriestags", "url", "urlcluster", "values", "view", "viewexplain",
     "viewifpermitted", "ytsaurus", "zeros", "zeros_mt"}
)  # fmt: skip

# Scalar functions that read files, reach other servers or Keeper, or read the binary.
DENIED_SCALAR_FUNCTIONS = frozenset(
    {"file", "hascolumnintable", "generateserialid", "catboostevaluate", "naivebayesclassifier",
     "addresstoline", "addresstolinewithinlines", "addresstosymbol", "demangle"}
)  # fmt: skip
# A name that is also a harmless scalar function (`format('{} {}', a, b)`) is only refused in FROM.
_SCALAR_TOO = frozenset({"format"})
DENIED_FUNCTIONS = (KNOWN_TABLE_FUNCTIONS - ALLOWED_TABLE_FUNCTIONS - _SCALAR_TOO) | DENIED_SCALAR_FUNCTIONS

# EXPLAIN AST node kinds of the statements that may run.
STATEMENTS = frozenset(
    {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "ShowColumns", "ShowIndexes",
     "ShowCreateTableQuery", "ShowCreateViewQuery", "ShowCreateDatabaseQuery", "ShowCreateDictionaryQuery",
     "ShowProcesslistQuery", "ShowEngineQuery", "ShowFunctions", "ShowSetting", "DescribeQuery",
     "ExistsTableQuery", "ExistsDatabaseQuery", "ExistsViewQuery", "ExistsDictionaryQuery", "Explain"}
)  # fmt: skip
_FIRST_WORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
_KIND_NAMES = {
    "InsertQuery": "INSERT", "KillQueryQuery": "KILL", "Set": "SET", "UseQuery": "USE",
    "ShowGrantsQuery": "SHOW GRANTS", "ShowAccessQuery": "SHOW ACCESS",
}  # fmt: skip

# The output formats a caller may ask for, by the name ClickHouse knows them by.
OUTPUT_FORMATS = frozenset(
    {"CSV", "CSVWithNames", "TSV", "TSVWithNames", "TSVWithNamesAndTypes", "TabSeparated",
     "TabSeparatedWithNames", "JSON", "JSONCompact", "JSONEachRow", "Parquet",
     "ArrowStream"}  # ArrowStream: the research API's frames (tickpipe_research)
)  # fmt: skip

_FUNCTION = re.compile(r"^Function (\S+)")
_EXPLAIN_FORMAT = "TSVRaw"


class QueryRefused(ValueError):
    """The query is not a read the query path runs; the message says what was refused and why."""


@dataclass(frozen=True)
class _Node:
    depth: int
    text: str

    @property
    def kind(self) -> str:
        return self.text.split(" ", 1)[0]


def output_format(name: str) -> str:
    """`name` if it is one of OUTPUT_FORMATS (the constant from the set, never the caller's string)."""
    for known in OUTPUT_FORMATS:
        if known == name:
            return known
    raise QueryRefused(f"format {name!r} is not offered; use one of {', '.join(sorted(OUTPUT_FORMATS))}")


class _Passed:
    """The last CACHE_SIZE checks that passed (a dashboard asks the same queries every few seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], str] = OrderedDict()

    def get(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            canonical = self._items.get(key)
            if canonical is not None:
                self._items.move_to_end(key)
            return canonical

    def put(self, key: tuple[str, str], canonical: str) -> None:
        with self._lock:
            self._items[key] = canonical
            while len(self._items) > CACHE_SIZE:
                self._items.popitem(last=False)


CACHE_SIZE = 512
_passed = _Passed()


def check(client: Any, sql: str, params: Mapping[str, Any] | None = None) -> str:
    """The canonical text of `sql` if it may run on the query path; QueryRefused otherwise.

    `client` is a clickhouse-connect client on the engine that will run the query (at readonly=1).
    A text that passed before with the same parameter names passes again without asking ClickHouse:
    a `{name:Type}` value is bound as a literal of its type and cannot change the parse tree, so the
    verdict depends on the text and on which names are bound, not on the values (the research API
    asks the same few texts with new symbols and times on every call). The exception is an
    `{name:Identifier}` placeholder, which names a table or column: there the values are part of the
    key. A refusal is never remembered.
    """
    key = (sql, _bound(sql, params))
    known = _passed.get(key)
    if known is not None:
        return known
    canonical = _check(client, sql, params)
    _passed.put(key, canonical)
    return canonical


_IDENTIFIER_PLACEHOLDER = re.compile(r"\{\s*\w+\s*:\s*Identifier\s*\}", re.IGNORECASE)


def _bound(sql: str, params: Mapping[str, Any] | None) -> str:
    """What of the parameters the verdict depends on: their names, or every value if one is an Identifier."""
    given = dict(params or {})
    if _IDENTIFIER_PLACEHOLDER.search(sql):
        return json.dumps(given, sort_keys=True, default=str)
    return json.dumps(sorted(given))


def _check(client: Any, sql: str, params: Mapping[str, Any] | None) -> str:
    if len(sql.encode()) > MAX_QUERY_BYTES:
        raise QueryRefused(f"the query is longer than {MAX_QUERY_BYTES} bytes")
    try:
        canonical = str(
            client.query("SELECT formatQuery({q:String})", parameters={"q": sql}).result_rows[0][0]
        )
    except Exception as exc:
        raise QueryRefused(_engine_words(exc, "cannot parse the query")) from None
    check_canonical(canonical)
    try:
        dump = client.raw_query(
            f"EXPLAIN AST {canonical}", parameters=dict(params or {}) or None, fmt=_EXPLAIN_FORMAT
        )
    except Exception as exc:
        if "READONLY" in str(exc) or "Code: 164" in str(exc):
            raise QueryRefused("SETTINGS clauses are refused: limits are the operator's") from None
        raise QueryRefused(_engine_words(exc, "cannot parse the query")) from None
    check_ast(bytes(dump).decode(errors="replace"))
    return canonical


def check_canonical(canonical: str) -> None:
    """Checks on formatQuery's text: the statement's first word, and clauses that start a line there.

    In the canonical text a raw newline only separates clauses (literals and identifiers carry
    theirs escaped), so a line starting with INTO OUTFILE, FORMAT or SETTINGS is that clause.
    """
    words = canonical.lstrip("( \n").split(None, 1)
    first = words[0].upper() if words else ""
    if first not in _FIRST_WORDS:
        raise QueryRefused(
            f"{first or 'an empty query'} statements are refused: the query path runs only reading "
            "statements (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN)"
        )
    for line in canonical.split("\n"):
        clause = line.strip().upper()
        if clause.startswith("INTO OUTFILE"):
            raise QueryRefused("INTO OUTFILE is refused: results come back to the caller, never into a file")
        if clause.startswith("FORMAT "):
            raise QueryRefused(
                "a FORMAT clause is refused: choose the output format with --format (or `format`)"
            )
        if clause == "SETTINGS" or clause.startswith("SETTINGS "):
            raise QueryRefused("SETTINGS clauses are refused: limits are the operator's")


def check_ast(dump: str) -> None:
    """Walk EXPLAIN AST's text tree (one node a line, indented one space per level)."""
    nodes = [
        _Node(len(line) - len(line.lstrip(" ")), line.strip()) for line in dump.split("\n") if line.strip()
    ]
    if not nodes:
        raise QueryRefused("ClickHouse returned no parse tree for the query")
    _statement(nodes[0])
    parents: list[_Node] = []
    for index, node in enumerate(nodes):
        while parents and parents[-1].depth >= node.depth:
            parents.pop()
        parent = parents[-1] if parents else None
        if index > 0 and node.depth == 0:
            raise QueryRefused("names with line breaks are refused (they make the parse tree ambiguous)")
        if parent is not None and parent.kind in STATEMENTS:
            if node.kind == "Literal":
                raise QueryRefused(
                    "INTO OUTFILE is refused: results come back to the caller, never into a file"
                )
            if parent.kind == "Explain" and node.kind not in ("Set", "Identifier"):
                _statement(node)  # what EXPLAIN explains must be a reading statement too
        if node.kind == "Set" and not (parent is not None and parent.kind == "Explain"):
            raise QueryRefused("SETTINGS clauses are refused: limits are the operator's")
        match = _FUNCTION.match(node.text)
        if match:
            name = match.group(1).lower()
            in_from = (
                index > 0
                and nodes[index - 1].kind == "TableExpression"
                and nodes[index - 1].depth == node.depth - 1
            )
            if name in DENIED_FUNCTIONS or name.startswith("dict"):
                raise QueryRefused(f"{match.group(1)}() is refused: {_why(name)}")
            if in_from and name not in ALLOWED_TABLE_FUNCTIONS:
                allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
                raise QueryRefused(f"table function {match.group(1)}() is refused; allowed: {allowed}")
        parents.append(node)


def _statement(node: _Node) -> None:
    if node.kind not in STATEMENTS:
        name = _KIND_NAMES.get(node.kind, node.text.split(" (", 1)[0])
        raise QueryRefused(
            f"{name} is refused: the query path runs only reading statements "
            "(SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN)"
        )


def _why(name: str) -> str:
    if name.startswith("dict"):
        return "dictionaries may load from files, URLs or other servers"
    if name in DENIED_SCALAR_FUNCTIONS:
        return "it reads files, the binary or another server"
    return "it reads files, URLs, object stores, other servers or processes"


def _engine_words(exc: Exception, what: str) -> str:
    text = str(exc)
    start = text.find("DB::Exception:")
    words = text[start + len("DB::Exception:") :].strip() if start >= 0 else text
    if "Multi-statements are not allowed" in words:
        return "one statement at a time: the query holds more than one (a `;` between statements)"
    missing = re.search(r"Substitution `(\w+)` is not set", words)
    if missing:
        name = missing.group(1)
        return f"the query uses {{{name}:Type}} but no value was given (--param {name}=...)"
    return f"{what}: {words.splitlines()[0] if words else type(exc).__name__}"
