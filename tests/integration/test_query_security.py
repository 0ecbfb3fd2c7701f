"""The query path is read-only for real: every attack of issue 14, on chDB, direct and through a sink.

Direct: `tickpipe query` on this run's chDB folder (in-process). Through the endpoint: a real
`tickpipe sink` process on its own folder, with a fake POLYGON_API_KEY in its environment, asked by
`tickpipe query` (which finds the sink's discovery file) and by raw HTTP. Each attack must be
refused with a message that says so, and leave no trace: no file written, no connection made to a
listener on 127.0.0.1, no secret in the answer, nothing inserted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KafkaHandle
from tests.integration.test_infra_dashboard_sql import _expand
from tests.integration.test_infra_dashboard_sql import _queries as dashboard_queries
from tests.support import wait_for
from tickpipe.kafka import ensure_topics
from tickpipe.process import stop_pid
from tickpipe_cli.cli import main
from tickpipe_clickhouse.query import guard
from tickpipe_clickhouse.query.client import (
    EndpointClient,
    GuardedClient,
    QueryFailed,
    live_endpoint,
    run_rows,
    run_saved,
)
from tickpipe_clickhouse.query.endpoint import discovery_path
from tickpipe_clickhouse.query.limits import QueryLimits, open_reader
from tickpipe_clickhouse.query.saved import saved_queries
from tickpipe_clickhouse.schema.migrations import load_migrations, migrate
from tickpipe_clickhouse.schema.reader import reader_user_statements

pytestmark = pytest.mark.integration

FAKE_KEY = "pk_FAKE_" + uuid.uuid4().hex  # the sink's "Polygon key": must never come back
SLOW = "SELECT count() FROM numbers(1000000000000) WHERE cityHash64(number) = 7"


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections (answers like a tiny HTTP server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                conn.settimeout(1)
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n1\n")
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/control", timeout=5) as answer:
        assert answer.read() == b"1\n"
    wait_for(lambda: server.accepted == 1, "the listener to count a control request", 5)
    server.accepted = 0  # it counts: from here on, any connection is the attack's
    yield server
    server.close()


def attacks(outfile: Path, port: int, db: str) -> list[tuple[str, str]]:
    """(SQL, a word the refusal must contain)."""
    out = str(outfile)
    here = f"127.0.0.1:{port}"
    return [
        (f"SELECT 1 INTO OUTFILE '{out}' TRUNCATE", "INTO OUTFILE"),
        (f"SELECT 1 /* ; */ INTO OUTFILE '{out}'", "INTO OUTFILE"),
        (f"SELECT 1 -- harmless\nINTO OUTFILE '{out}'", "INTO OUTFILE"),
        (f"SHOW TABLES INTO OUTFILE '{out}'", "INTO OUTFILE"),
        (f"SELECT 1; SELECT 2 INTO OUTFILE '{out}'", "one statement"),
        (f"SELECT 1 ;\n INSERT INTO {db}.trades (symbol) VALUES ('X')", "one statement"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
        ("SELECT * FROM file('/proc/self/environ', 'RawBLOB')", "file()"),
        ("SELECT file('/proc/self/environ')", "file()"),
        ("SELECT * FROM FILE('/proc/self/environ', 'RawBLOB')", "FILE()"),
        ("SELECT * FROM (SELECT * FROM file('/proc/self/environ', 'RawBLOB'))", "file()"),
        ("WITH e AS (SELECT * FROM file('/proc/self/environ', 'RawBLOB')) SELECT * FROM e", "file()"),
        ("SELECT * FROM view(SELECT * FROM file('/proc/self/environ', 'RawBLOB'))", "file()"),
        ("DESCRIBE file('/etc/passwd', 'LineAsString')", "file()"),
        ("SELECT * FROM numbers(1) AS n, file('/etc/passwd', 'LineAsString') AS f", "file()"),
        ("SELECT arrayMap(p -> file(p), ['/proc/self/environ'])", "file()"),
        ("SELECT * FROM viewExplain('EXPLAIN', '', (SELECT * FROM file('/etc/passwd')))", "viewExplain()"),
        (f"EXPLAIN SYNTAX SELECT 1 INTO OUTFILE '{out}'", "INTO OUTFILE"),
        ("EXPLAIN SELECT * FROM file('/etc/passwd', 'LineAsString')", "file()"),
        (f"SELECT * FROM url('http://{here}/x', CSV, 'a String')", "url()"),
        (f"SELECT 1 WHERE 1 IN (SELECT * FROM url('http://{here}/in', CSV, 'a UInt8'))", "url()"),
        (
            f"SELECT * FROM system.one AS a JOIN url('http://{here}/j', CSV, 'dummy UInt8') AS b USING dummy",
            "url()",
        ),
        (f"SELECT * FROM s3('http://{here}/bucket/key.csv', CSV, 'a String')", "s3()"),
        (f"SELECT * FROM remote('{here}', system.one)", "remote()"),
        (f"SELECT * FROM mysql('{here}', 'db', 't', 'u', 'p')", "mysql()"),
        (f"SELECT * FROM postgresql('{here}', 'db', 't', 'u', 'p')", "postgresql()"),
        ("SELECT * FROM executable('cat /proc/self/environ', RawBLOB, 'x String')", "executable()"),
        ("SELECT * FROM input('x String')", "input()"),
        ("SELECT * FROM Python(settings)", "Python()"),
        ("SELECT dictGet('secrets', 'v', 1)", "dictGet()"),
        ("SELECT * FROM dictionary('secrets')", "dictionary()"),
        ("KILL QUERY WHERE query LIKE 'INSERT%' SYNC", "KILL"),
        ("SET max_execution_time = 100000", "SET"),
        ("SET readonly = 0", "SET"),
        ("SELECT 1 SETTINGS max_execution_time = 100000", "SETTINGS"),
        ("SELECT * FROM (SELECT 1 SETTINGS max_memory_usage = 0)", "SETTINGS"),
        ("SELECT 1 FORMAT CSV", "FORMAT"),
        (f"INSERT INTO {db}.trades (symbol) VALUES ('X')", "INSERT"),
        (f"WITH x AS (SELECT 'X') INSERT INTO {db}.trades (symbol) SELECT * FROM x", "INSERT"),
        (f"EXPLAIN PIPELINE INSERT INTO {db}.trades (symbol) SELECT 'X'", "INSERT"),
        (f"ALTER TABLE {db}.trades DELETE WHERE 1", "ALTER"),
        (f"DROP TABLE {db}.trades", "DROP"),
        (f"TRUNCATE TABLE {db}.trades", "TRUNCATE"),
        ("SYSTEM SHUTDOWN", "SYSTEM"),
        ("CREATE TABLE x (a UInt8) ENGINE = File(CSV, '/tmp/x')", "CREATE"),
    ]


def assert_no_trace(outfile: Path, listener: Listener, answer: str) -> None:
    assert not outfile.exists(), f"{outfile} was written"
    assert listener.accepted == 0, f"the listener on 127.0.0.1:{listener.port} got a connection"
    assert FAKE_KEY not in answer  # the sink's environment
    assert f"PATH={os.environ.get('PATH', '')}" not in answer  # this process's (/proc/self/environ)
    assert "root:x:0:0" not in answer  # /etc/passwd


# --- direct: tickpipe query on chDB ------------------------------------------------------------


@pytest.fixture
def db(clickhouse: Any, ch_database: str) -> str:
    migrate(clickhouse, ch_database)
    clickhouse.command(
        f"INSERT INTO {ch_database}.aggregates (ev, symbol, timestamp, end_timestamp, open, high, low, close,"
        " volume, vwap, day_volume, day_open, day_vwap, avg_size, otc, received_ns)"
        " VALUES ('A', 'AAPL', now64(3) - 30, now64(3) - 29,"
        " 10, 12, 9, 11, 500, 10.5, 5000, 10, 10.2, 50, false, 1)"
    )
    clickhouse.command(
        f"INSERT INTO {ch_database}.trades (symbol, timestamp, price, size, received_ns)"
        " VALUES ('AAPL', now64(3) - 20, 11.5, 100, 1)"
    )
    return ch_database


def cli(dsn: str, db: str, *args: str, capsysbinary: Any) -> tuple[int, str, str]:
    code = main(["query", "--clickhouse-dsn", dsn, "--clickhouse-database", db, *args])
    out, err = capsysbinary.readouterr()
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def test_every_attack_is_refused_directly_with_no_side_effect(
    clickhouse: Any, clickhouse_dsn: str, db: str, tmp_path: Path, listener: Listener, capsysbinary: Any
) -> None:
    outfile = tmp_path / "written-by-the-query.txt"
    before = clickhouse.query(f"SELECT count() FROM {db}.trades").result_rows
    for sql, word in attacks(outfile, listener.port, db):
        code, out, err = cli(clickhouse_dsn, db, sql, "--format", "csv", capsysbinary=capsysbinary)
        assert code == 1, (sql, out, err)
        assert "refused" in err, (sql, err)
        assert word in err, (sql, err)
        assert_no_trace(outfile, listener, out + err)
    assert clickhouse.query(f"SELECT count() FROM {db}.trades").result_rows == before


def test_sql_file_and_saved_queries_pass_the_same_guard(
    clickhouse_dsn: str, db: str, tmp_path: Path, capsysbinary: Any
) -> None:
    outfile = tmp_path / "out.txt"
    sql_file = tmp_path / "attack.sql"
    sql_file.write_text(f"-- a report\nSELECT 1\nINTO OUTFILE '{outfile}'\n")
    code, _, err = cli(clickhouse_dsn, db, "-f", str(sql_file), "--format", "csv", capsysbinary=capsysbinary)
    assert code == 1
    assert "INTO OUTFILE" in err
    assert not outfile.exists()
    code, out, _ = cli(clickhouse_dsn, db, "--saved", "latest", "--format", "csv", capsysbinary=capsysbinary)
    assert code == 0
    assert out.splitlines()[1].startswith('"AAPL"')
    # a parameter is a value, never SQL: an Identifier parameter cannot become a table function
    code, out, err = cli(
        clickhouse_dsn,
        db,
        "SELECT * FROM {t:Identifier}",
        "--param",
        "t=file('/proc/self/environ', 'RawBLOB')",
        "--format",
        "csv",
        capsysbinary=capsysbinary,
    )
    assert code == 1
    assert "UNKNOWN_TABLE" in err or "refused" in err, err
    assert FAKE_KEY not in out


def test_limits_hold_and_the_caller_cannot_raise_them(
    clickhouse_dsn: str, db: str, capsysbinary: Any
) -> None:
    code, _, err = cli(
        clickhouse_dsn,
        db,
        SLOW,
        "--format",
        "csv",
        "--query-max-execution-seconds",
        "1",
        capsysbinary=capsysbinary,
    )
    assert code == 1
    assert "TIMEOUT_EXCEEDED" in err, err
    code, _, err = cli(
        clickhouse_dsn,
        db,
        "SELECT number FROM numbers(20)",
        "--format",
        "csv",
        "--query-max-result-rows",
        "10",
        capsysbinary=capsysbinary,
    )
    assert code == 1
    assert "TOO_MANY_ROWS_OR_BYTES" in err, err

    reader = open_reader(clickhouse_dsn, db, QueryLimits(max_execution_seconds=7, max_result_rows=1234))
    try:
        settings = dict(
            reader.query(
                "SELECT name, value FROM system.settings WHERE name IN "
                "('readonly', 'max_execution_time', 'max_result_rows', 'allow_introspection_functions')"
            ).result_rows
        )
        assert settings == {
            "readonly": "1",
            "max_execution_time": "7",
            "max_result_rows": "1234",
            "allow_introspection_functions": "0",
        }
        # Even without the guard, the session itself refuses to change a limit.
        with pytest.raises(Exception, match=r"(?i)readonly"):
            reader.command("SET max_execution_time = 100000")
        with pytest.raises(Exception, match=r"(?i)readonly"):
            reader.query("SELECT 1 SETTINGS max_result_rows = 0")
    finally:
        reader.close()


def test_the_table_renderer_survives_odd_values_and_escapes_control_characters(
    clickhouse_dsn: str, db: str, capsysbinary: Any
) -> None:
    sql = (
        "SELECT fromUnixTimestamp64Milli(toInt64(1e15), 'UTC') AS far, "
        "concat('a', char(27), '[31mred', char(0), char(10), 'b') AS s, nan AS x, NULL AS z, toUInt64(5) AS n"
    )
    code, out, err = cli(clickhouse_dsn, db, sql, "--format", "table", capsysbinary=capsysbinary)
    assert code == 0, err
    assert "\x1b" not in out
    assert "\x00" not in out
    lines = out.splitlines()
    assert lines[2].split() == ["9999-12-31", "23:59:59.000", "a\\x1b[31mred\\x00\\nb", "nan", "NULL", "5"]
    assert lines[-1] == "(1 row)"


def test_a_stale_discovery_file_falls_back_to_a_direct_connection(
    clickhouse_dsn: str, db: str, capsysbinary: Any
) -> None:
    """A discovery file naming a live pid whose endpoint does not answer (a reused pid, a hung sink)."""
    folder = Path(clickhouse_dsn.removeprefix("chdb://"))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    path = discovery_path(folder)
    path.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getppid(), "token": "x"}))
    try:
        assert live_endpoint(folder) is not None
        code, out, err = cli(
            clickhouse_dsn, db, "SELECT 41 + 1 AS n", "--format", "csv", capsysbinary=capsysbinary
        )
        assert (code, out.splitlines()) == (0, ['"n"', "42"]), err
    finally:
        path.unlink()


def test_legitimate_queries_pass_the_guard(clickhouse_dsn: str, db: str, clickhouse: Any) -> None:
    """Saved queries, the demo report's queries and the Grafana dashboard's SQL all still run."""
    from tickpipe_demo import report

    client = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits()))
    try:
        for name, saved in saved_queries().items():
            params = {p.name: "AAPL" for p in saved.params if p.default is None}
            assert guard.check(client.client, saved.sql, saved.bind(params)), name
            run_saved(client, name, params)  # runs (gaps has no rows to show with one bar)
        assert dict(client.query(report._COUNT_SQL).result_rows)["trades"] == 1
        assert run_rows(client, report._BUSIEST_SQL).result_rows[0][0] == "AAPL"
        assert report._candles(client, "AAPL").result_rows
        for sql in dashboard_queries():
            expanded = _expand(sql, db)
            assert guard.check(client.client, expanded), sql
            assert client.query(expanded).result_rows, sql
        for sql in (
            "SHOW TABLES",
            f"DESCRIBE TABLE {db}.trades",
            f"EXISTS TABLE {db}.trades",
            "EXPLAIN SELECT 1",
        ):
            assert client.query(sql).result_rows, sql
        assert client.query("SELECT * FROM numbers(3)").result_rows == [(0,), (1,), (2,)]
        assert client.query("SELECT format('{}-{}', 'a', 'b')").result_rows == [("a-b",)]
    finally:
        client.close()


def test_every_table_function_of_the_engine_is_classified(clickhouse: Any) -> None:
    engine = {
        str(r[0]).lower() for r in clickhouse.query("SELECT name FROM system.table_functions").result_rows
    }
    unknown = engine - guard.KNOWN_TABLE_FUNCTIONS
    assert not unknown, f"new table functions: allow or deny them in guard.py: {sorted(unknown)}"
    assert engine >= guard.ALLOWED_TABLE_FUNCTIONS


# --- through a running sink's endpoint ---------------------------------------------------------


class Sink:
    def __init__(self, folder: Path, proc: subprocess.Popen[bytes], log: Path):
        self.folder = folder
        self.proc = proc
        self.log = log
        self.dsn = f"chdb://{folder}"

    def endpoint(self) -> EndpointClient:
        info = json.loads(discovery_path(self.folder).read_text())
        return EndpointClient(info["url"], info["token"], timeout=60)

    def info(self) -> dict[str, Any]:
        return dict(json.loads(discovery_path(self.folder).read_text()))


@pytest.fixture(scope="module")
def sink(kafka: KafkaHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    home = tmp_path_factory.mktemp("sink")
    topic = f"filtered-{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka.config(), [topic], partitions=1)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(home)),
        "TICKPIPE_HOME": str(home / "home"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "FILTERED_TOPIC": topic,
        "CLICKHOUSE_DSN": f"chdb://{home / 'chdb'}",
        "CLICKHOUSE_DATABASE": "tp",
        "SINK_GROUP_ID": f"sink-{uuid.uuid4().hex[:8]}",
        "SINK_QUERY_WORKERS": "2",
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
        "POLYGON_API_KEY": FAKE_KEY,
    }
    log = home / "sink.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tickpipe_cli", "sink"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    handle = Sink(home / "chdb", proc, log)
    try:
        wait_for(
            lambda: proc.poll() is not None or discovery_path(handle.folder).exists(),
            "the sink's endpoint",
            90,
        )
        assert proc.poll() is None, log.read_text()[-3000:]
        yield handle
    finally:
        stop_pid(proc.pid, timeout=30)
        proc.wait(10)
    assert FAKE_KEY not in log.read_text()


def test_every_attack_is_refused_through_the_endpoint(
    sink: Sink, tmp_path: Path, listener: Listener, capsysbinary: Any
) -> None:
    outfile = tmp_path / "written-by-the-sink.txt"
    client = sink.endpoint()
    for sql, word in attacks(outfile, listener.port, "tp"):
        with pytest.raises(QueryFailed) as refused:
            client.raw_query(sql, fmt="CSV")
        assert str(refused.value).startswith("refused:"), (sql, refused.value)
        assert word in str(refused.value), (sql, refused.value)
        assert_no_trace(outfile, listener, str(refused.value))
    # and the same through `tickpipe query`, which finds the sink by its discovery file
    code, out, err = cli(
        sink.dsn,
        "tp",
        "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
        "--format",
        "csv",
        capsysbinary=capsysbinary,
    )
    assert code == 1
    assert "refused: file()" in err
    assert_no_trace(outfile, listener, out + err)
    assert client.query("SELECT count() FROM tp.trades").result_rows == [(0,)]


def test_the_endpoint_never_splices_its_format_field(sink: Sink, tmp_path: Path) -> None:
    outfile = tmp_path / "spliced.txt"
    client = sink.endpoint()
    for fmt in (
        f"CSV INTO OUTFILE '{outfile}'",
        "CSV SETTINGS max_execution_time = 100000",
        "CSV; SELECT 1",
        "Vertical",
    ):
        with pytest.raises(QueryFailed, match=r"refused: format .* is not offered"):
            client.raw_query("SELECT 1", fmt=fmt)
    assert not outfile.exists()
    assert client.raw_query("SELECT 1 AS one", fmt="CSVWithNames") == b'"one"\n1\n'


def _post(url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """A raw HTTP exchange (http.client would fix the headers we want to break)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(f"POST /query HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode("latin-1") + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= _length(data):
                break
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_the_endpoint_checks_tokens_as_bytes_and_content_length(sink: Sink) -> None:
    info = sink.info()
    url, token = info["url"], info["token"]
    body = json.dumps({"sql": "SELECT 1", "format": "TSV"}).encode()
    assert (
        _post(url, {"Authorization": "Bearer \u00e9t\u00e9", "Content-Length": str(len(body))}, body)[0]
        == 401
    )
    auth = {"Authorization": f"Bearer {token}"}
    assert _post(url, {**auth, "Content-Length": "-1"})[0] == 400
    assert _post(url, {**auth, "Content-Length": str(10**12)})[0] == 413
    assert _post(url, {**auth, "Content-Length": "many"})[0] == 411
    assert _post(url, {**auth, "Content-Length": str(len(body))}, body) == (200, b"1\n")
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:  # noqa: S310 (loopback)
        assert answer.status == 200


def _running(client: EndpointClient, marker: str) -> int:
    rows = client.query(
        f"SELECT count() FROM system.processes WHERE query LIKE '%{marker}%'"
        " AND query NOT LIKE '%system.processes%'"
    )
    return int(rows.result_rows[0][0])


def test_a_slow_query_does_not_block_others_and_a_caller_that_leaves_cancels_it(sink: Sink) -> None:
    client = sink.endpoint()
    marker = uuid.uuid4().hex[:12]
    slow = f"{SLOW} AND '{marker}' != ''"
    body = json.dumps({"sql": slow, "format": "TSV"}).encode()
    info = sink.info()
    host, port = info["url"].removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(
        f"POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {info['token']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    wait_for(lambda: _running(client, marker) == 1, "the slow query to run", 30)
    assert client.raw_query("SELECT 1", fmt="TSV") == b"1\n"  # answered while the slow one runs
    assert _running(client, marker) == 1
    conn.close()  # the caller goes away: the sink kills its query (the limit is 60 s)
    wait_for(lambda: _running(client, marker) == 0, "the abandoned query to be killed", 20)
    assert "query killed" in sink.log.read_text()


def test_the_endpoint_answers_while_a_client_times_out(sink: Sink) -> None:
    marker = uuid.uuid4().hex[:12]
    info = sink.info()
    impatient = EndpointClient(info["url"], info["token"], timeout=1.0)
    started = time.monotonic()
    with pytest.raises(QueryFailed, match="did not answer"):
        impatient.raw_query(f"{SLOW} AND '{marker}' != ''")
    assert time.monotonic() - started < 30
    client = sink.endpoint()
    wait_for(lambda: _running(client, marker) == 0, "the timed-out query to be killed", 20)


def test_readonly_alone_would_not_stop_these_attacks(clickhouse_dsn: str, db: str, tmp_path: Path) -> None:
    """Why the guard exists: at readonly=1 ClickHouse itself still writes INTO OUTFILE and reads
    files with the scalar file() (checked here, so the attacks above are not refused by accident)."""
    outfile = tmp_path / "readonly-wrote-this.txt"
    secret = tmp_path / "secret.txt"
    secret.write_text(FAKE_KEY)
    reader = open_reader(clickhouse_dsn, db, QueryLimits())
    try:
        reader.raw_query(f"SELECT 1 INTO OUTFILE '{outfile}'")
        assert outfile.exists()
        assert FAKE_KEY in reader.raw_query(f"SELECT file('{secret}')").decode()
    finally:
        reader.close()


def test_the_reader_role_statements_parse_and_chdb_records_them(clickhouse: Any, ch_database: str) -> None:
    """chDB has no users, so migration 020 is recorded there, not run; ClickHouse's parser accepts
    every statement of it and of the reader user (formatQuery parses without executing)."""
    migrate(clickhouse, ch_database)
    versions = {
        r[0] for r in clickhouse.query(f"SELECT version FROM {ch_database}.schema_migrations").result_rows
    }
    assert 20 in versions
    migration = next(m for m in load_migrations() if m.version == 20)
    statements = migration.statements(ch_database)
    statements += reader_user_statements("tickpipe_query", "a 'quoted' \\ secret", ch_database)
    for statement in statements:
        canonical = clickhouse.query(
            "SELECT formatQuery({q:String})", parameters={"q": statement}
        ).result_rows
        assert canonical[0][0], statement


def test_random_fragment_soups_never_escape(
    clickhouse: Any, clickhouse_dsn: str, db: str, tmp_path: Path, listener: Listener
) -> None:
    """A seeded fuzz: statements glued from keywords, attack pieces, quotes, comments and
    semicolons. Whatever the guard lets through and ClickHouse runs must leave no trace."""
    import random

    outfile = tmp_path / "fuzz-wrote-this.txt"
    here = f"127.0.0.1:{listener.port}"
    pieces = [
        "SELECT", "1", "*", "FROM", "WITH", "x", "AS", ",", "(", ")", ";", "\n", "--", "/*", "*/", "'", "`",
        '"', "#", "$$", "\\", "UNION ALL", "IN", "WHERE", "JOIN", "USING", "dummy", "system.one",
        "numbers(2)", "view(", "SELECT 1", f"file('{outfile}')", "file('/proc/self/environ', 'RawBLOB')",
        f"url('http://{here}/f', CSV, 'a String')", f"remote('{here}', system.one)",
        f"INTO OUTFILE '{outfile}'", "FORMAT CSV", "SETTINGS max_threads = 1", "KILL QUERY WHERE 1",
        f"INSERT INTO {db}.trades (symbol) VALUES ('FUZZ')", "SET readonly = 0", "EXPLAIN", "DESCRIBE",
    ]  # fmt: skip
    rng = random.Random(14)
    client = GuardedClient(open_reader(clickhouse_dsn, db, QueryLimits(max_execution_seconds=5)))
    ran = refused = 0
    try:
        for _ in range(400):
            sql = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
            try:
                answer = client.raw_query(sql, fmt="TSV").decode(errors="replace")
                ran += 1
            except guard.QueryRefused:
                refused += 1
                answer = ""
            except Exception as exc:  # ClickHouse refused it (unknown table, bad arguments...)
                answer = str(exc)
            assert_no_trace(outfile, listener, answer)
    finally:
        client.close()
    assert refused > 100  # the soup does reach the guard's refusals
    assert ran > 0  # and some of it is legitimate and runs
    assert clickhouse.query(f"SELECT count() FROM {db}.trades WHERE symbol = 'FUZZ'").result_rows == [(0,)]
    print(f"fuzz: {ran} ran, {refused} refused by the guard, the rest refused by ClickHouse")
