"""The query guard's tree walk and clause checks, the table renderer, and the endpoint's HTTP checks.

The EXPLAIN AST texts are as chDB 26.9 prints them (the integration tests run the real parser).
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tickpipe_clickhouse.query import guard
from tickpipe_clickhouse.query.client import EndpointClient, QueryFailed, _tsv_value, printable, render_table
from tickpipe_clickhouse.query.endpoint import QueryEndpoint, _parse
from tickpipe_clickhouse.query.limits import QueryLimits
from tickpipe_clickhouse.settings import ClickHouseSettings

SELECT_FROM = """SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      {table}
 Identifier TSVRaw
"""


def _from(table: str) -> str:
    return SELECT_FROM.format(table=table)


def test_plain_selects_and_allowed_table_functions_pass() -> None:
    guard.check_ast(_from("TableIdentifier tp.trades"))
    guard.check_ast(
        _from("Function numbers (children 1)\n       ExpressionList (children 1)\n        Literal UInt64_3")
    )
    guard.check_ast(
        "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n  SelectQuery (children 2)\n"
        "   ExpressionList (children 1)\n    Function format (children 1)\n     ExpressionList (children 2)\n"
        "      Literal '{}'\n      Literal 'a'\n   Literal UInt64_1\n Identifier TSVRaw\n"
    )  # scalar format() and a WHERE literal directly under SelectQuery are fine


@pytest.mark.parametrize(
    ("table", "word"),
    [
        ("Function file (children 1)", "file()"),
        ("Function URL (alias b) (children 1)", "URL()"),
        ("Function Python (children 1)", "Python()"),
        ("Function merge (children 1)", "merge()"),
        ("Function format (children 1)", "table function format()"),
        ("Function dictionary (children 1)", "dictionary()"),
    ],
)
def test_table_functions_outside_the_allow_list_are_refused(table: str, word: str) -> None:
    with pytest.raises(guard.QueryRefused, match=re.escape(word)):
        guard.check_ast(_from(table))


def test_denied_functions_are_refused_anywhere_and_deep() -> None:
    dump = (
        "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
        "   ExpressionList (children 1)\n    Function in (children 1)\n     ExpressionList (children 2)\n"
        "      Literal UInt64_1\n      Function s3 (children 1)\n       ExpressionList (children 1)\n"
        "        Literal 'http://x'\n Identifier TSVRaw\n"
    )
    with pytest.raises(guard.QueryRefused, match=r"s3\(\) is refused"):
        guard.check_ast(dump)
    with pytest.raises(guard.QueryRefused, match="dictionaries"):
        guard.check_ast(dump.replace("Function s3", "Function dictGetString"))


def test_outfile_settings_and_statement_kinds() -> None:
    outfile = (
        "SelectWithUnionQuery (children 3)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
        "   ExpressionList (children 1)\n    Literal UInt64_1\n Literal '/tmp/x'\n Identifier TSVRaw\n"
    )
    with pytest.raises(guard.QueryRefused, match="INTO OUTFILE"):
        guard.check_ast(outfile)
    nested_settings = _from(
        "Subquery (children 1)\n       SelectWithUnionQuery (children 1)\n"
        "        ExpressionList (children 1)\n"
        "         SelectQuery (children 2)\n          ExpressionList (children 1)\n"
        "           Literal UInt64_1\n"
        "          Set"
    )
    with pytest.raises(guard.QueryRefused, match="SETTINGS"):
        guard.check_ast(nested_settings)
    with pytest.raises(guard.QueryRefused, match="KILL is refused"):
        guard.check_ast(
            "KillQueryQuery Literal_UInt64_1 SYNC (children 2)\n Literal UInt64_1\n Identifier TSVRaw"
        )
    explain_insert = (
        "Explain EXPLAIN PIPELINE (children 2)\n InsertQuery   (children 2)\n"
        "  Identifier t\n Identifier TSVRaw"
    )
    with pytest.raises(guard.QueryRefused, match="INSERT is refused"):
        guard.check_ast(explain_insert)
    guard.check_ast(  # EXPLAIN's own options (header = 1) are not query settings
        "Explain EXPLAIN (children 3)\n Set\n SelectWithUnionQuery (children 1)\n"
        "  ExpressionList (children 1)\n"
        "   SelectQuery (children 1)\n    ExpressionList (children 1)\n"
        "     Literal UInt64_1\n Identifier TSVRaw"
    )


def test_a_name_with_a_line_break_cannot_fake_the_tree() -> None:
    faked = (
        "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
        "   ExpressionList (children 1)\n    Literal UInt64_1 (alias a\n"
        "SelectWithUnionQuery)\n Literal '/tmp/x'\n"
    )
    with pytest.raises(guard.QueryRefused, match="line breaks"):
        guard.check_ast(faked)


@pytest.mark.parametrize(
    ("canonical", "word"),
    [
        ("INSERT INTO t FORMAT Values", "INSERT"),
        ("KILL QUERY WHERE 1 SYNC", "KILL"),
        ("SELECT 1\nINTO OUTFILE '/tmp/x' TRUNCATE", "INTO OUTFILE"),
        ("SELECT 1\nFORMAT CSV", "FORMAT"),
        ("SELECT *\nFROM\n(\n    SELECT 1\n    SETTINGS max_threads = 1\n)", "SETTINGS"),
        ("", "empty"),
    ],
)
def test_clauses_in_the_canonical_text_are_refused(canonical: str, word: str) -> None:
    with pytest.raises(guard.QueryRefused, match=word):
        guard.check_canonical(canonical)


def test_literals_that_look_like_clauses_are_fine() -> None:
    guard.check_canonical("SELECT 'x\\nINTO OUTFILE' AS s\nFROM t\nWHERE s = 'SETTINGS a = 1'")
    guard.check_canonical("WITH\n    1 AS x\nSELECT x")
    guard.check_canonical("DESCRIBE TABLE t")


def test_the_format_comes_from_the_fixed_list_never_from_the_caller() -> None:
    assert guard.output_format("CSVWithNames") == "CSVWithNames"
    for spliced in ("CSV INTO OUTFILE '/tmp/x'", "CSV SETTINGS readonly = 0", "csv", "Vertical", ""):
        with pytest.raises(guard.QueryRefused, match="not offered"):
            guard.output_format(spliced)


def test_the_guard_is_refused_an_oversized_query_before_asking_clickhouse() -> None:
    with pytest.raises(guard.QueryRefused, match="longer than"):
        guard.check(object(), "SELECT '" + "x" * guard.MAX_QUERY_BYTES + "'")


def test_limits_come_from_the_settings_and_readonly_is_set_last() -> None:
    limits = ClickHouseSettings(query_max_execution_seconds=5, query_max_result_rows=10).query_limits()
    assert limits == QueryLimits(5, QueryLimits().max_memory_bytes, 10, QueryLimits().max_result_bytes)
    settings = limits.session_settings()
    assert list(settings)[-1] == "readonly"
    assert settings["readonly"] == 1
    assert settings["max_execution_time"] == 5


def test_the_table_renderer_escapes_control_characters_and_never_dies() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("year 33658 is out of range")

    table = render_table(
        ["s\x1b[2J", "n"], [("\x1b[31mred\x00", 1), (Unprintable(), float("nan")), (None, 2.5)]
    )
    assert "\x1b" not in table
    assert "\x00" not in table
    assert "s\\x1b[2J" in table
    assert "\\x1b[31mred\\x00" in table
    assert "<Unprintable>" in table
    assert table.splitlines()[-1] == "(3 rows)"
    assert printable("plain ÄÖ 漢字") == "plain ÄÖ 漢字"
    assert printable("a\u2028b\tc") == "a\\u2028b\\tc"


def test_tab_separated_values_are_unescaped() -> None:
    assert _tsv_value("\\N") is None
    assert _tsv_value("a\\tb\\nc\\\\d") == "a\tb\nc\\d"
    assert _tsv_value("\x1b[31m") == "\x1b[31m"


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"{}",
        b'{"sql": 1}',
        b'{"sql": "SELECT 1", "format": 5}',
        b'{"sql": "", "params": [1]}',
        b"\xff",
    ],
)
def test_bad_request_bodies_are_refused(raw: bytes) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        _parse(raw)


class NeverAsked:
    """A reader the HTTP checks must refuse before: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the reader was used ({name}) before the request was checked")


def _raw(port: int, head: str, body: bytes = b"") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"POST /query HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode("latin-1") + body)
        return int(conn.recv(4096).split(b" ", 2)[1])


def test_the_endpoint_checks_the_token_as_bytes_and_the_length(tmp_path: Path) -> None:
    endpoint = QueryEndpoint([NeverAsked()], tmp_path, "tp").start()
    try:
        port = int(endpoint.url.rsplit(":", 1)[1])
        token = endpoint.token
        assert not endpoint.authorized("Bearer \u00e9\u00e9\u00e9")
        assert not endpoint.authorized("Bearer \udcff")
        assert endpoint.authorized(f"Bearer {token}")
        assert _raw(port, "Authorization: Bearer \xe9t\xe9\r\nContent-Length: 2\r\n", b"{}") == 401
        assert _raw(port, f"Authorization: Bearer {token}\r\nContent-Length: -1\r\n") == 400
        assert _raw(port, f"Authorization: Bearer {token}\r\nContent-Length: 99999999999\r\n") == 413
        assert _raw(port, f"Authorization: Bearer {token}\r\n") == 411
        assert _raw(port, f"Authorization: Bearer {token}\r\nContent-Length: 3\r\n", b"[1]") == 400
        format_spliced = json.dumps({"sql": "SELECT 1", "format": "CSV INTO OUTFILE '/tmp/x'"}).encode()
        head = f"Authorization: Bearer {token}\r\nContent-Length: {len(format_spliced)}\r\n"
        assert _raw(port, head, format_spliced) == 400
        with urllib.request.urlopen(f"{endpoint.url}/healthz", timeout=5) as answer:  # noqa: S310 (loopback)
            assert answer.status == 200
    finally:
        endpoint.stop()


def test_an_endpoint_that_does_not_answer_is_a_clear_error() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    client = EndpointClient(f"http://127.0.0.1:{port}", "token", timeout=2)
    assert not client.alive()
    with pytest.raises(QueryFailed, match="did not answer"):
        client.raw_query("SELECT 1")


def test_the_endpoint_bounds_its_connection_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickpipe_clickhouse.query import endpoint as endpoint_module

    monkeypatch.setattr(endpoint_module, "MAX_CONNECTIONS", 3)
    endpoint = QueryEndpoint([NeverAsked()], tmp_path, "tp").start()
    port = int(endpoint.url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    try:
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert extra.recv(1) == b"", "a connection over the bound is closed at once"
        extra.close()
    finally:
        for conn in idle:
            conn.close()
        endpoint.stop()


class _CountingEngine:
    """Answers the guard's two questions (formatQuery, EXPLAIN AST) as chDB would, counting them."""

    def __init__(self) -> None:
        self.asked = 0

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        self.asked += 1
        return type("Result", (), {"result_rows": [[parameters["q"]]]})()

    def raw_query(self, sql: str, parameters: Any = None, fmt: str = "") -> bytes:
        self.asked += 1
        return SELECT_FROM.replace("{table}", "TableIdentifier trades").encode()


def test_a_passed_text_is_not_asked_again_for_new_values_but_is_for_new_names_or_identifiers() -> None:
    engine = _CountingEngine()
    text = f"SELECT * FROM trades WHERE symbol = {{s:String}} AND price > {{p:Float64}} -- {id(engine)}"
    guard.check(engine, text, {"s": "AAPL", "p": 1})
    assert engine.asked == 2
    guard.check(engine, text, {"s": "MSFT", "p": 2.5})  # new values: the same parse tree
    assert engine.asked == 2
    guard.check(engine, text, {"s": "MSFT"})  # another set of names is checked again
    assert engine.asked == 4
    named = f"SELECT * FROM {{t: Identifier}} -- {id(engine)}"
    guard.check(engine, named, {"t": "trades"})
    guard.check(engine, named, {"t": "quotes"})  # an identifier changes the tree: asked again
    assert engine.asked == 8
