"""The writer's routing, bad-row isolation and error classification, against a fake client."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.unit.test_ch_batching import Rec
from tickpipe_clickhouse.query.client import Rows
from tickpipe_clickhouse.sink.batching import Batch
from tickpipe_clickhouse.sink.routing import COLUMNS, Unroutable, route
from tickpipe_clickhouse.sink.writer import ClickHouseWriter, TransientWriteError, describe, is_data_error


class FakeClient:
    """Rejects any block containing b"bad" the way ClickHouse does; records every insert."""

    def __init__(self, error: str = "Code: 27. DB::Exception: Cannot parse input: (at row 1)"):
        self.error = error
        self.inserts: list[tuple[str, list[bytes]]] = []
        self.tables: list[tuple[str, tuple[str, ...]]] = []

    def raw_insert(
        self, table: str, columns: Any, insert_block: bytes, fmt: str, settings: dict[str, Any]
    ) -> None:
        rows = insert_block.split(b"\n")
        if any(b"bad" in row for row in rows):
            raise RuntimeError(self.error)
        self.inserts.append((settings["insert_deduplication_token"], rows))
        self.tables.append((table, tuple(columns)))


KNOWN = "A, AM, XA, XAS, CA, CAS, T, XT, Q, XQ, C, XL2"


def batch(values: list[bytes]) -> Batch:
    return Batch("t", 0, [Rec(i, val=v) for i, v in enumerate(values)])


def trade(n: int, marker: str = "ok") -> bytes:
    return f'{{"ev":"T","symbol":"AAPL","n":{n},"m":"{marker}"}}'.encode()


def test_bad_rows_are_isolated_with_deterministic_tokens() -> None:
    values = [trade(0), trade(1), trade(2, "bad"), trade(3), trade(4), trade(5, "bad"), trade(6), trade(7)]
    client = FakeClient()
    rejected = ClickHouseWriter(client, "db").write(batch(values))
    assert [r.record.value() for r in rejected] == [values[2], values[5]]
    assert {r.reason for r in rejected} == {"clickhouse_rejected"}
    stored = sorted(v for _, rows in client.inserts for v in rows)
    assert stored == sorted(v for v in values if b"bad" not in v)
    again = FakeClient()
    ClickHouseWriter(again, "db").write(batch(values))
    assert [t for t, _ in again.inserts] == [t for t, _ in client.inserts], "a replay must cut the same way"
    assert all(t.startswith("t:0:0-7:trades/") for t, _ in client.inserts)


def test_rows_go_to_their_table_with_one_token_per_table() -> None:
    values = [
        b'{"ev":"Q","symbol":"AAPL"}',
        b'{"ev":"A","symbol":"AAPL"}',
        b'{"ev":"T","symbol":"AAPL"}',
        b'{"symbol":"MSFT","ev":"XT"}',  # another field order: parsed to find ev
        b'{"ev":"AM","symbol":"AAPL"}',
    ]
    client = FakeClient()
    assert ClickHouseWriter(client, "db").write(batch(values)) == []
    assert client.inserts == [
        ("t:0:0-4:aggregates", [values[1], values[4]]),
        ("t:0:0-4:quotes", [values[0]]),
        ("t:0:0-4:trades", [values[2], values[3]]),
    ]
    assert [table for table, _ in client.tables] == ["`db`.aggregates", "`db`.quotes", "`db`.trades"]
    assert client.tables[0][1] == COLUMNS["aggregates"]


def test_a_topic_named_in_topic_tables_goes_to_its_table_unrouted() -> None:
    values = [b'{"gap_id":"f:1","state":"repairing"}', b'{"gap_id":"f:1","state":"repaired"}', b""]
    client = FakeClient()
    writer = ClickHouseWriter(client, "db", topic_tables={"gap-states": "feed_gaps"})
    rejected = writer.write(Batch("gap-states", 0, [Rec(i, val=v) for i, v in enumerate(values)]))
    assert [(r.record.offset(), r.reason) for r in rejected] == [(2, "empty_value")]
    assert client.inserts == [("gap-states:0:0-2:feed_gaps", values[:2])]
    assert client.tables == [("`db`.feed_gaps", COLUMNS["feed_gaps"])]
    other = FakeClient()
    ClickHouseWriter(other, "db", topic_tables={"gap-states": "feed_gaps"}).write(batch(values[:1]))
    assert other.inserts == [], "another topic's records are routed by `ev` (this one has none)"


def test_values_without_a_table_never_reach_clickhouse() -> None:
    client = FakeClient()
    values = [b"", b'{"ev":"T",\n"symbol":"X"}', b"not json", b"[1]", b'{"sym":"X"}', b'{"ev":"ZZ"}']
    values.append(trade(6))
    rejected = ClickHouseWriter(client, "db").write(batch(values))
    assert sorted((r.record.offset(), r.reason) for r in rejected) == [
        (0, "empty_value"),
        (1, "malformed_json"),  # JSONEachRow reads one value per line
        (2, "malformed_json"),
        (3, "malformed_json"),
        (4, "missing_field"),
        (5, "unknown_ev"),
    ]
    assert "'ZZ'" in next(r.detail for r in rejected if r.reason == "unknown_ev")
    assert client.inserts == [("t:0:0-6:trades", [trade(6)])]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"ev":"A","symbol":"X"}', "aggregates"),
        (b'{"ev":"XA","pair":"BTC-USD"}', "aggregates"),
        (b'{"ev":"CA"}', "aggregates"),
        (b'{"ev":"XQ"}', "quotes"),
        (b'{"ev":"XAS","symbol":"X"}', "aggregates"),  # three letters: the 11-byte prefix
        (b'{"ev":"CAS"}', "aggregates"),
        (b'{"ev":"C","symbol":"USD/CNH"}', "quotes"),
        (b'{"ev":"XL2","symbol":"BTC-USD"}', "books"),
        (b'{ "ev" : "T" }', "trades"),  # spaces: the slow path still finds it
        (b'{"ev":"Tx"}', Unroutable("unknown_ev", f"`ev` is 'Tx'; the sink stores {KNOWN}")),
        (b'{"ev":5}', Unroutable("unknown_ev", f"`ev` is 5; the sink stores {KNOWN}")),
    ],
)
def test_route(value: bytes, expected: str | Unroutable) -> None:
    assert route(value) == expected


def test_server_trouble_is_transient() -> None:
    client = FakeClient(error="Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)")
    with pytest.raises(TransientWriteError, match="code 252"):
        ClickHouseWriter(client, "db").write(batch([trade(0, "bad")]))


def test_describe_names_the_constraint_and_drops_noise() -> None:
    exc = RuntimeError(
        "Code: 469. DB::Exception: Constraint `symbol_present` for table db.trades is violated at row 1. "
        "(in file/uri /tmp/tmpabc.raw): While executing X"
    )
    assert is_data_error(exc)
    reason, detail = describe(exc)
    assert reason == "constraint_violated"
    assert "symbol_present" in detail
    assert "/tmp/" not in detail
    assert not is_data_error(ConnectionResetError("peer reset"))


class DedupLossClient(FakeClient):
    """A ClickHouse that 'deduplicates' the first insert of each token without storing it: the state
    a crash leaves between the deduplication log and the part commit. Rows are found by symbol."""

    def __init__(self, lose_first: bool):
        super().__init__()
        self.lose_first = lose_first
        self.stored: set[str] = set()
        self.queries = 0

    def raw_insert(
        self, table: str, columns: Any, insert_block: bytes, fmt: str, settings: dict[str, Any]
    ) -> None:
        token = settings["insert_deduplication_token"]
        self.inserts.append((token, insert_block.split(b"\n")))
        if self.lose_first and ":again" not in token:
            return
        self.stored.update(
            row.split(b'"symbol":"')[1].split(b'"')[0].decode() for row in insert_block.split(b"\n")
        )

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        self.queries += 1
        return Rows(("count()",), [(1 if parameters["symbol"] in self.stored else 0,)])


def _trades(symbols: list[str]) -> list[bytes]:
    return [f'{{"ev":"T","symbol":"{s}","ts_ms":1,"sequence":{i}}}'.encode() for i, s in enumerate(symbols)]


def test_a_replay_whose_rows_are_stored_is_not_inserted_again() -> None:
    client = DedupLossClient(lose_first=False)
    replayed = Batch("t", 0, [Rec(i, val=v) for i, v in enumerate(_trades(["A", "B", "C"]))], replay=True)
    assert ClickHouseWriter(client, "db").write(replayed) == []
    assert [token for token, _ in client.inserts] == ["t:0:0-2:trades"]
    assert client.queries == 2  # the first and the last row


def test_a_replay_dropped_as_a_duplicate_without_its_rows_is_inserted_again() -> None:
    client = DedupLossClient(lose_first=True)
    replayed = Batch("t", 0, [Rec(i, val=v) for i, v in enumerate(_trades(["A", "B", "C"]))], replay=True)
    assert ClickHouseWriter(client, "db").write(replayed) == []
    assert [token for token, _ in client.inserts] == ["t:0:0-2:trades", "t:0:0-2:trades:again1:197001"]
    assert client.stored == {"A", "B", "C"}


def test_a_first_insert_is_not_checked() -> None:
    client = DedupLossClient(lose_first=False)
    ClickHouseWriter(client, "db").write(Batch("t", 0, [Rec(0, val=_trades(["A"])[0])]))
    assert client.queries == 0


def test_a_replay_spanning_two_months_inserts_again_only_the_month_not_stored() -> None:
    """ClickHouse commits one part per month; a crash between them leaves one month stored."""
    client = DedupLossClient(lose_first=True)
    client.stored = {"A"}  # January's part was committed, February's was lost
    values = [
        b'{"ev":"T","symbol":"A","ts_ms":1,"sequence":0}',
        b'{"ev":"T","symbol":"B","ts_ms":2678400000,"sequence":1}',  # 1970-02-01
        b'{"ev":"T","symbol":"C","ts_ms":2678400001,"sequence":2}',
    ]
    replayed = Batch("t", 0, [Rec(i, val=v) for i, v in enumerate(values)], replay=True)
    assert ClickHouseWriter(client, "db").write(replayed) == []
    assert client.inserts[1:] == [("t:0:0-2:trades:again1:197002", values[1:])]
    assert client.stored == {"A", "B", "C"}


class MeetingClient(FakeClient):
    """Its first insert waits until the barrier's other parties are inserting too (or fails at the
    barrier's timeout): inserts made one after another never meet."""

    def __init__(
        self, barrier: threading.Barrier, error: str | None = None, slow: threading.Event | None = None
    ):
        super().__init__()
        self.barrier = barrier
        self.fail_with = error
        self.slow = slow
        self.met = False

    def raw_insert(
        self, table: str, columns: Any, insert_block: bytes, fmt: str, settings: dict[str, Any]
    ) -> None:
        if not self.met:
            self.met = True
            self.barrier.wait()
        if self.slow is not None:  # still inserting after the others have ended
            time.sleep(0.2)
            self.slow.set()
        if self.fail_with is not None:
            raise RuntimeError(self.fail_with)
        super().raw_insert(table, columns, insert_block, fmt, settings)


MIXED = [
    b'{"ev":"Q","symbol":"AAPL"}',
    b'{"ev":"A","symbol":"AAPL","m":"bad"}',
    b'{"ev":"T","symbol":"AAPL"}',
    b'{"ev":"T","symbol":"MSFT","m":"bad"}',
    b'{"ev":"A",\n"symbol":"X"}',
    b'{"ev":"AM","symbol":"AAPL"}',
    b'{"ev":"T","symbol":"NVDA"}',
]


def test_with_a_session_per_table_the_tables_are_inserted_at_once_with_the_same_outcome() -> None:
    one = FakeClient()
    sequential = ClickHouseWriter(one, "db")
    alone = sequential.write(batch(MIXED))
    barrier = threading.Barrier(3, timeout=5)  # three tables: sequential inserts would never meet
    clients = [MeetingClient(barrier) for _ in range(3)]
    writer = ClickHouseWriter(clients[0], "db", sessions=clients[1:])
    try:
        together = writer.write(batch(MIXED))
    finally:
        writer.close()
    assert [(r.record.offset(), r.reason) for r in together] == [(r.record.offset(), r.reason) for r in alone]
    assert [r.record.offset() for r in together] == [4, 1, 3], "each table's rejects, tables in order"
    assert sorted(i for c in clients for i in c.inserts) == sorted(one.inserts), "same tokens, same rows"
    assert all(len(c.inserts) <= 2 for c in clients), "the tables were spread over the sessions"
    assert writer.inserts == sequential.inserts, "the same attempts, failed halves included"


def test_a_failed_table_is_raised_only_after_the_other_tables_inserts_ended() -> None:
    barrier = threading.Barrier(3, timeout=5)
    ended = threading.Event()
    failing = "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)"
    clients = [
        MeetingClient(barrier, error=failing),
        MeetingClient(barrier, slow=ended),
        MeetingClient(barrier, slow=threading.Event()),
    ]
    writer = ClickHouseWriter(clients[0], "db", sessions=clients[1:])
    try:
        with pytest.raises(TransientWriteError, match="code 252"):
            writer.write(batch([MIXED[0], MIXED[2], MIXED[5]]))
        assert ended.is_set(), "a retry must not overlap an insert of the batch still running"
    finally:
        writer.close()


class OneAtATimeClient(FakeClient):
    """Records whether two threads ever used it at once (a chDB session runs one statement at a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = threading.Lock()
        self.overlapped = False

    def raw_insert(
        self, table: str, columns: Any, insert_block: bytes, fmt: str, settings: dict[str, Any]
    ) -> None:
        if not self.busy.acquire(blocking=False):
            self.overlapped = True
            return
        try:
            time.sleep(0.002)  # long enough for another thread to try the same session
            super().raw_insert(table, columns, insert_block, fmt, settings)
        finally:
            self.busy.release()


def test_writes_from_several_threads_never_share_a_session() -> None:
    clients = [OneAtATimeClient() for _ in range(3)]
    writer = ClickHouseWriter(clients[0], "db", sessions=clients[1:])
    values = {p: MIXED if p % 2 else [trade(n) for n in range(3)] for p in range(6)}  # one table or many
    batches = [Batch("t", p, [Rec(i, part=p, val=v) for i, v in enumerate(values[p])]) for p in range(6)]
    results: dict[int, list[int | None]] = {}

    def write(b: Batch) -> None:
        results[b.partition] = [r.record.offset() for r in writer.write(b)]

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        writer.close()
    assert not any(c.overlapped for c in clients), "a session ran two inserts at once"
    assert results == {p: [4, 1, 3] if p % 2 else [] for p in range(6)}, "each batch's rejects, as alone"
    tokens = sorted(token for c in clients for token, _ in c.inserts)
    assert len(tokens) == len(set(tokens)), "no insert was made twice"
    assert len({t.split(":")[1] for t in tokens}) == 6, "every partition's batch was inserted"
