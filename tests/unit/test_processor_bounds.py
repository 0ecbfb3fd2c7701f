"""Every normalised value against its ClickHouse column (bounds.py), and the bounds against the migrations."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import orjson
import pytest

from tests.unit.test_contract import _table_columns
from tests.unit.test_processor_batch import TRADE, Produced, message, step
from tickpipe import contract
from tickpipe_processor.bounds import (
    COLUMN_TYPES,
    EVENT_TIMES,
    LIMITS,
    MAX_FLOAT,
    Bounds,
    _finder_source,
    decoder_guarantees,
)

QUOTE = {"ev": "Q", "sym": "AAPL", "bx": 4, "bp": 100.5, "bs": 1, "ax": 7, "ap": 100.6, "as": 2,
         "c": 1, "z": 3, "t": 1732550400000, "q": 9}  # fmt: skip
BOOK = {"ev": "XL2", "pair": "BTC-USD", "t": 1610462411115, "x": 1, "b": [[33712.71, 0.18635]],
        "a": [[33718.23, 3.5527483]]}  # fmt: skip
BAR = {"ev": "AM", "sym": "AAPL", "v": 10, "av": 1000, "op": 99.0, "vw": 100.1, "o": 100.0, "c": 100.2,
       "h": 100.5, "l": 99.5, "a": 100.0, "z": 5, "s": 1732550400000, "e": 1732550460000}  # fmt: skip


def _column_type(declaration: str) -> str:
    """`LowCardinality(String)` -> `String`; `UInt16 CODEC(ZSTD(1))` -> `UInt16`;
    `Array(Tuple(Float64, Float64)) CODEC(...)` -> `Array(Tuple(Float64, Float64))`."""
    depth, end = 0, len(declaration)
    for i, char in enumerate(declaration):  # the type ends at the first space outside parentheses
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == " " and depth == 0:
            end = i
            break
    first = declaration[:end].rstrip(",")
    match = re.fullmatch(r"LowCardinality\((.*)\)", first)
    return match.group(1) if match else first


@pytest.mark.parametrize("family", sorted(contract.FIELDS))
def test_bounds_name_every_field_with_the_type_of_its_column_in_the_migrations(
    family: contract.Family,
) -> None:
    columns = _table_columns()[contract.TABLE_OF_FAMILY[family]]
    assert tuple(COLUMN_TYPES[family]) == contract.FIELDS[family]
    for field, column_type in COLUMN_TYPES[family].items():
        assert _column_type(columns[field]) == column_type, f"{family}.{field}"


def test_each_integer_limit_fits_its_clickhouse_type() -> None:
    for name, (low, high) in LIMITS.items():
        match = re.fullmatch(r"(U?)Int(\d+)", name)
        if match is None:
            assert name == "Float64"
            continue
        bits = int(match.group(2))
        native = (0, 2**bits - 1) if match.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        assert native[0] <= low <= high <= native[1], name
    used = {
        t.removeprefix("Array(").removesuffix(")") for types in COLUMN_TYPES.values() for t in types.values()
    }
    for levels in [t for t in used if t.startswith("Tuple(")]:  # book levels: each member's limit
        used = (used - {levels}) | set(levels.removeprefix("Tuple(").removesuffix(")").split(", "))
    assert used - {"String", "Bool"} <= set(LIMITS), "a column type without a limit"


def run(*events: Any) -> tuple[Produced, Any]:
    out = Produced()
    values = [json.dumps(event).encode() for event in events]  # json: integers past 64 bits too
    report = step().run([message(value, offset) for offset, value in enumerate(values)], out)
    return out, report


def reason_of(event: Any) -> str | None:
    out, report = run(event)
    if report.produced:
        return None
    headers = dict(out.records[0][3])
    return str(headers["tp.dlq.reason"].decode())


NOW_MS = int(time.time() * 1000)
YEAR_3000_MS = 32503680000000


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({**TRADE, "x": 65535}, None),
        ({**TRADE, "x": 65536}, "out_of_range"),
        ({**TRADE, "x": 70000}, "out_of_range"),  # stored as 4464 before
        ({**TRADE, "z": 255}, None),
        ({**TRADE, "z": 300}, "out_of_range"),  # stored as 44 before
        ({**TRADE, "c": [12, 65535]}, None),
        ({**TRADE, "c": [12, 70000]}, "out_of_range"),
        ({**TRADE, "c": list(range(65))}, "out_of_range"),
        ({**TRADE, "q": 2**63 - 1}, None),
        ({**TRADE, "q": 2**64}, "out_of_range"),
        ({**TRADE, "p": MAX_FLOAT}, None),
        ({**TRADE, "p": 1e308}, "out_of_range"),
        ({**TRADE, "s": 1e13}, "out_of_range"),
        ({**TRADE, "t": NOW_MS}, None),
        ({**TRADE, "t": YEAR_3000_MS}, "out_of_range"),
        ({**TRADE, "t": 10**15}, "out_of_range"),
        ({**TRADE, "t": 631152000000 - 1}, "out_of_range"),  # 1989-12-31T23:59:59.999
        ({**TRADE, "t": 631152000000}, None),
        ({**TRADE, "i": "x" * 128}, None),
        ({**TRADE, "i": "x" * 129}, "out_of_range"),
        ({**QUOTE, "bx": 70000}, "out_of_range"),
        ({**QUOTE, "ax": 70000}, "out_of_range"),
        ({**QUOTE, "c": 70000}, "out_of_range"),
        ({**QUOTE, "ap": 1e300}, "out_of_range"),
        ({**QUOTE, "z": 256}, "out_of_range"),
        (QUOTE, None),
        (BAR, None),
        ({**BAR, "av": 2**64}, "out_of_range"),
        ({**BAR, "av": 1e19}, "out_of_range"),
        ({**BAR, "h": 1e308}, "out_of_range"),
        ({**BAR, "vw": 1e15}, "out_of_range"),
        ({**BAR, "s": YEAR_3000_MS, "e": YEAR_3000_MS + 60_000}, "out_of_range"),
        ({**BAR, "e": YEAR_3000_MS}, "out_of_range"),
        (BOOK, None),
        ({**BOOK, "b": [[1e308, 1.0]]}, "out_of_range"),
        ({**BOOK, "x": 70000}, "out_of_range"),
        ({**BOOK, "t": YEAR_3000_MS}, "out_of_range"),
    ],
)
def test_each_value_is_stored_only_if_its_column_holds_it(event: dict[str, Any], reason: str | None) -> None:
    assert reason_of(event) == reason


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.A", "X:BTCUSD", "C:EUR-USD", "EUR/USD", "A" * 64])
def test_polygon_symbols_pass(symbol: str) -> None:
    assert reason_of({**TRADE, "sym": symbol}) is None


@pytest.mark.parametrize(
    "symbol", ["A" * 65, "A" * 900_000, "AA\x00PL", "AAPL\n", "AA PL", "\x1b[31mAAPL", "ÄAPL", "AA;PL"]
)
def test_other_symbols_are_dead_letters(symbol: str) -> None:
    event = {**TRADE, "sym": symbol}
    out = Produced()
    report = step(max_bytes=2_000_000).run([message(event)], out)
    assert report.dead == {"bad_symbol": 1}
    assert len(dict(out.records[0][3])["tp.dlq.detail"]) < 300


def test_the_detail_names_the_field_its_value_and_its_column() -> None:
    out, _ = run({**TRADE, "x": 70000})
    detail = dict(out.records[0][3])["tp.dlq.detail"].decode()
    assert detail.startswith("exchange: 70000 is outside 0..65535 (UInt16)"), detail


def test_the_time_window_is_configurable_and_its_upper_end_moves_with_now() -> None:
    bounds = Bounds(event_time_min_ms=0, event_time_ahead_s=60)
    bounds.refresh(now_ms=1_000_000)
    assert bounds.window == {"lo_ms": 0, "hi_ms": 1_060_000}
    finder = bounds.finders[type(_trade_event(1_060_000))]
    assert finder(_trade_event(1_060_000)) is None
    assert finder(_trade_event(1_060_001)) == "ts_ms"
    bounds.refresh(now_ms=2_000_000)
    assert finder(_trade_event(1_060_001)) is None


def test_received_ns_beyond_int64_is_out_of_range() -> None:
    out = Produced()
    report = step().run([message(TRADE, received=str(2**63).encode())], out)
    assert report.dead == {"out_of_range": 1}


def test_time_fields_are_the_event_times_of_the_contract() -> None:
    times = {field for fields in COLUMN_TYPES.values() for field in fields if field in EVENT_TIMES}
    assert times == {"start_ms", "end_ms", "ts_ms"}


def _trade_event(ts_ms: int) -> Any:
    from tickpipe_processor.events import parse

    return parse(orjson.dumps({**TRADE, "t": ts_ms}), None)[1]


def test_the_decoder_takes_its_ceilings_from_the_column_table_and_the_checks_skip_only_those() -> None:
    given = decoder_guarantees("trade")
    assert given["price"].ceiling == MAX_FLOAT
    assert given["price"].floor == 0
    assert given["conditions"].ceiling == LIMITS["UInt16"][1]
    assert given["conditions"].max_length == 64
    assert "tape" not in given, "XT has no tape: the check stays here"
    source = _finder_source("trade")
    assert "'price'" not in source, "the decoder checks it in C"
    assert "'exchange'" in source, "exchange shares `Code` with sequence: its UInt16 ceiling is here"
