"""The writer's bad-row isolation and error classification, against a fake client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_ch_batching import Rec
from tickpipe_clickhouse.batching import Batch
from tickpipe_clickhouse.writer import ClickHouseWriter, TransientWriteError, describe, is_data_error


class FakeClient:
    """Rejects any block containing b"bad" the way ClickHouse does; records every insert."""

    def __init__(self, error: str = "Code: 27. DB::Exception: Cannot parse input: (at row 1)"):
        self.error = error
        self.inserts: list[tuple[str, list[bytes]]] = []

    def raw_insert(
        self, table: str, columns: Any, insert_block: bytes, fmt: str, settings: dict[str, Any]
    ) -> None:
        rows = insert_block.split(b"\n")
        if any(b"bad" in row for row in rows):
            raise RuntimeError(self.error)
        self.inserts.append((settings["insert_deduplication_token"], rows))


def batch(values: list[bytes]) -> Batch:
    return Batch("t", 0, [Rec(i, val=v) for i, v in enumerate(values)])


def test_bad_rows_are_isolated_with_deterministic_tokens() -> None:
    values = [b"r0", b"r1", b"bad2", b"r3", b"r4", b"bad5", b"r6", b"r7"]
    client = FakeClient()
    rejected = ClickHouseWriter(client, "db").write(batch(values))
    assert [r.record.value() for r in rejected] == [b"bad2", b"bad5"]
    assert {r.reason for r in rejected} == {"clickhouse_rejected"}
    stored = sorted(v for _, rows in client.inserts for v in rows)
    assert stored == sorted(v for v in values if b"bad" not in v)
    again = FakeClient()
    ClickHouseWriter(again, "db").write(batch(values))
    assert [t for t, _ in again.inserts] == [t for t, _ in client.inserts], "a replay must cut the same way"
    assert all(t.startswith("t:0:0-7/") for t, _ in client.inserts)


def test_empty_and_multiline_values_never_reach_clickhouse() -> None:
    client = FakeClient()
    rejected = ClickHouseWriter(client, "db").write(batch([b"", b'{"a":\n1}', b"ok"]))
    assert [r.reason for r in rejected] == ["empty_value", "malformed_json"]
    assert client.inserts == [("t:0:0-2", [b"ok"])]


def test_server_trouble_is_transient() -> None:
    client = FakeClient(error="Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)")
    with pytest.raises(TransientWriteError, match="code 252"):
        ClickHouseWriter(client, "db").write(batch([b"bad"]))


def test_describe_names_the_constraint_and_drops_noise() -> None:
    exc = RuntimeError(
        "Code: 469. DB::Exception: Constraint `symbol_present` for table db.ingest is violated at row 1. "
        "(in file/uri /tmp/tmpabc.raw): While executing X"
    )
    assert is_data_error(exc)
    reason, detail = describe(exc)
    assert reason == "constraint_violated"
    assert "symbol_present" in detail
    assert "/tmp/" not in detail
    assert not is_data_error(ConnectionResetError("peer reset"))
