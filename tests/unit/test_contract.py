"""The wire contract (tickpipe/contract.py) against the places that must agree with it: the
processor's output structs, the sink's routing, the raw tables' input columns, and dead letters."""

from __future__ import annotations

import re

import pytest

from tickpipe import contract
from tickpipe_clickhouse.schema.migrations import load_migrations
from tickpipe_clickhouse.sink.routing import COLUMNS, TABLE_OF_EV, route
from tickpipe_clickhouse.sink.writer import PRESENCE
from tickpipe_processor.events import RawEvent
from tickpipe_processor.output import Aggregate, Book, Quote, Trade
from tickpipe_producer.subscriptions import CHANNELS, REFUSED_CHANNELS, parse_subscriptions

STRUCTS = {"aggregate": Aggregate, "trade": Trade, "quote": Quote, "book": Book}


@pytest.mark.parametrize("family", sorted(contract.FIELDS))
def test_processor_output_structs_have_the_contract_fields_in_order(family: contract.Family) -> None:
    assert STRUCTS[family].__struct_fields__ == contract.FIELDS[family]


def test_the_processor_emits_exactly_the_contract_event_kinds() -> None:
    kinds = {cls.__struct_config__.tag: cls.FAMILY for cls in _subclasses(RawEvent)}
    assert kinds == contract.FAMILY_OF_EV


def test_the_sink_routes_every_kind_to_its_family_table() -> None:
    for ev, family in contract.FAMILY_OF_EV.items():
        table = contract.TABLE_OF_FAMILY[family]
        assert TABLE_OF_EV[ev] == table
        assert route(f'{{"ev":"{ev}","symbol":"X"}}'.encode()) == table
        assert COLUMNS[table] == contract.FIELDS[family]


def test_the_sink_can_find_a_replayed_row_again_in_every_table() -> None:
    """After a crash the writer checks a replayed batch's rows are stored (writer.PRESENCE): every
    family's table needs the probe, with fields of that family."""
    for family, table in contract.TABLE_OF_FAMILY.items():
        assert table in PRESENCE, table
        assert set(PRESENCE[table][1].values()) <= set(contract.FIELDS[family]), table


def test_every_channel_the_subscriptions_csv_accepts_has_a_path_to_a_table() -> None:
    """A channel the producer may subscribe to is decoded by the processor, routed by the sink and
    lands in a table the migrations create; none is accepted and then dead-lettered."""
    tables = _table_columns()
    decoded = {cls.__struct_config__.tag for cls in _subclasses(RawEvent)}
    for market, channels in CHANNELS.items():
        for channel in sorted(channels):
            assert parse_subscriptions(f"channel,symbol\n{channel},*\n", market).ok, channel
            assert channel in decoded, f"{market} {channel}: the processor has no raw kind for it"
            family = contract.FAMILY_OF_EV[channel]
            assert route(f'{{"ev":"{channel}","symbol":"X"}}'.encode()) == contract.TABLE_OF_FAMILY[family]
            assert contract.TABLE_OF_FAMILY[family] in tables, f"{market} {channel}: no table"


@pytest.mark.parametrize("channel", sorted(REFUSED_CHANNELS))
def test_the_csv_refuses_the_channels_tickpipe_does_not_store_and_says_why(channel: str) -> None:
    result = parse_subscriptions(f"channel,symbol\n{channel},AAPL\n", "stocks")
    assert not result.ok
    assert "not stored by tickpipe" in str(result.problems[0]), result.problems


def _table_columns() -> dict[str, dict[str, str]]:
    """Every raw table's columns as the migrations declare them: name -> the rest of its line."""
    text = "\n".join(m.sql for m in load_migrations())
    tables: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\((.*?)\n\)", text, re.S):
        columns = tables.setdefault(name, {})
        for line in body.splitlines():
            match = re.match(r"\s+(\w+)\s+(\S.*)$", line)
            if match and match.group(1) not in {"CONSTRAINT", "INDEX", "PROJECTION"}:
                columns[match.group(1)] = match.group(2)
    # In migration order: a later ADD or MODIFY COLUMN replaces what an earlier one declared.
    for name, column, rest in re.findall(
        r"ALTER TABLE \{db\}\.(\w+)\s+(?:ADD|MODIFY) COLUMN (?:IF (?:NOT )?EXISTS )?(\w+)\s+([^,;]*)", text
    ):
        tables.setdefault(name, {})[column] = rest
    return tables


def test_the_migration_reader_applies_a_later_modify_column() -> None:
    assert _table_columns()["aggregates"]["day_volume"].startswith("Float64"), "007 made day_volume Float64"


@pytest.mark.parametrize("family", sorted(contract.FIELDS))
def test_each_raw_table_takes_every_contract_field_as_an_input_column(family: contract.Family) -> None:
    table = contract.TABLE_OF_FAMILY[family]
    columns = _table_columns()[table]
    missing = [field for field in contract.FIELDS[family] if field not in columns]
    assert not missing, f"{table} has no input column for contract fields {missing}"
    ephemeral = {name for name, rest in columns.items() if "EPHEMERAL" in rest}
    assert ephemeral <= set(contract.FIELDS[family]), f"{table}: EPHEMERAL inputs outside the contract"


def test_dead_letter_headers_keep_the_original_replace_earlier_dlq_headers_and_never_raise() -> None:
    original = [
        (contract.FEED, b"socket.polygon.io/stocks"),
        (contract.DLQ_REASON, b"earlier"),
        (contract.SOURCE_OFFSET, b"1"),
    ]
    headers = contract.dead_letter_headers(original, "wrong_type", "bad \udcff text", "raw", 3, 41)
    assert headers[0] == (contract.FEED, b"socket.polygon.io/stocks")
    as_dict = dict(headers)
    assert len(headers) == len(as_dict), "one value per header name"
    assert as_dict[contract.DLQ_REASON] == b"wrong_type"
    assert as_dict[contract.DLQ_DETAIL] == b"bad ? text"
    assert (as_dict[contract.SOURCE_TOPIC], as_dict[contract.SOURCE_PARTITION]) == (b"raw", b"3")
    assert as_dict[contract.SOURCE_OFFSET] == b"41"


def _subclasses(cls: type[RawEvent]) -> list[type[RawEvent]]:
    found: list[type[RawEvent]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found
