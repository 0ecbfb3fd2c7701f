"""What one flush costs ClickHouse, view by view (used by `python -m bench.sink views`).

At a steady rate the sink flushes every SINK_BATCH_SECONDS, so each flush is one small insert per
table (trades, quotes, aggregates), and each insert also runs the table's materialized views: the
1-minute bars, the 5m -> 1h -> 1d cascade under them, the corrections view, `latest`. This measures
the CPU of one such insert (this process, chDB's threads included) in the real schema and with one
view or branch dropped, so the difference is that view's share. The rows are a simulated session at
`rate` trades+quotes per second cut into 0.5 s flushes, as the sink would see them.

One variant is not the schema but a prototype of the next step: the four bar levels of trades
written by one view into one table (`level` in its key), one part per insert instead of four,
checked equal to the cascade's bars (`prototype_bars_equal`).

Every variant runs `repeats` times, interleaved (variant A, B, C, A, B, C, ...), each in a fresh
database, and the median is reported: on a shared 2-core machine the first runs of a process and
background merges move single runs by ±30%.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from bench.sink_events import simulated
from tickpipe_clickhouse.connect import INSERT_SETTINGS, connect
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_clickhouse.sink.routing import COLUMNS
from tickpipe_clickhouse.sink.service import EMBEDDED_INSERT_SETTINGS

FLUSH_SECONDS = 0.5
TABLE_OF = {"A": "aggregates", "AM": "aggregates", "T": "trades", "Q": "quotes"}

PROTOTYPE = "prototype: one bars table, four levels from one view"
PROTOTYPE_SQL = [
    """CREATE TABLE {db}.bars
(
    level UInt32, symbol LowCardinality(String), bucket DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String), open AggregateFunction(argMin, Float64, Int128),
    high SimpleAggregateFunction(max, Float64), low SimpleAggregateFunction(min, Float64),
    close AggregateFunction(argMax, Float64, Int128), volume SimpleAggregateFunction(sum, Float64),
    pv SimpleAggregateFunction(sum, Float64), trades SimpleAggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(bucket) ORDER BY (level, symbol, bucket, source)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024""",
    # bars_1m_from_trades_mv of migration 006 with ARRAY JOIN over the levels' seconds.
    """CREATE MATERIALIZED VIEW {db}.bars_from_trades_mv TO {db}.bars AS
WITH
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_open_close) AS no_oc,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_high_low) AS no_hl,
    (SELECT groupArray(c.id) FROM {db}.trade_conditions AS c FINAL WHERE NOT c.updates_volume) AS no_vol
SELECT
    lvl AS level, t.symbol AS symbol, t.ev AS source,
    toDateTime(intDiv(toUnixTimestamp(t.timestamp), lvl) * lvl, 'UTC') AS bucket,
    argMinStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616')
        + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS open,
    max(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, -inf)) AS high,
    min(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_hl), t.price, inf)) AS low,
    argMaxStateIf(t.price, toInt128(toUnixTimestamp64Milli(t.timestamp)) * toInt128('18446744073709551616')
        + t.sequence, t.ev != 'T' OR NOT hasAny(t.conditions, no_oc)) AS close,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.size, 0)) AS volume,
    sum(if(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol), t.price * t.size, 0)) AS pv,
    toInt64(countIf(t.ev != 'T' OR NOT hasAny(t.conditions, no_vol))) AS trades
FROM {db}.trades AS t ARRAY JOIN [60, 300, 3600, 86400] AS lvl
GROUP BY level, t.symbol, bucket, t.ev""",
]
LEVELS = {60: "bars_1m", 300: "bars_5m", 3600: "bars_1h", 86400: "bars_1d"}
BAR = (
    "SELECT symbol, bucket, source, argMinMerge(open), max(high), min(low), argMaxMerge(close), "
    "round(sum(volume), 6), round(sum(pv), 2), sum(trades) FROM {table} {where} GROUP BY ALL ORDER BY ALL"
)

# Per table: the variants, each the views dropped before inserting (and, for the prototype, its SQL).
VARIANTS: dict[str, dict[str, list[str]]] = {
    "trades": {
        "all views": [],
        "without latest": ["latest_from_trades_mv"],
        "without the 5m/1h/1d cascade": ["bars_5m_mv"],
        "without bars (1m and cascade)": ["bars_1m_from_trades_mv"],
        "table only": ["latest_from_trades_mv", "bars_1m_from_trades_mv"],
        PROTOTYPE: ["bars_1m_from_trades_mv"],
    },
    "quotes": {
        "all views": [],
        "without latest": ["latest_from_quotes_mv"],
        "table only": ["latest_from_quotes_mv", "bars_1m_from_quotes_mv"],
    },
    "aggregates": {
        "all views": [],
        "without corrections": ["bars_1m_corrections_mv"],
        "without latest": ["latest_from_aggregates_mv"],
        "without the 5m/1h/1d cascade": ["bars_5m_mv"],
        "table only": [
            "bars_1m_from_aggregates_mv",
            "bars_1m_corrections_mv",
            "latest_from_aggregates_mv",
        ],
    },
}


def _flushes(rate: int, seconds: int) -> tuple[dict[str, list[bytes]], dict[str, int]]:
    """The session's values per table, each cut into one block per flush; and rows per block."""
    values: dict[str, list[bytes]] = defaultdict(list)
    for event in simulated(seconds, rate=float(rate)):
        values[TABLE_OF[event["ev"]]].append(orjson.dumps(event))
    count = int(seconds / FLUSH_SECONDS)
    blocks: dict[str, list[bytes]] = {}
    sizes: dict[str, int] = {}
    for table, rows in values.items():
        size = sizes[table] = max(1, len(rows) // count)
        blocks[table] = [b"\n".join(rows[i : i + size]) for i in range(0, size * count, size)]
    return blocks, sizes


def views(rate: int, seconds: int, repeats: int, work: Path) -> dict[str, Any]:
    blocks, rows_per_flush = _flushes(rate, seconds)
    folder = work / "chdb"
    shutil.rmtree(folder, ignore_errors=True)
    client = connect(f"chdb://{folder}")
    settings = {**INSERT_SETTINGS, **EMBEDDED_INSERT_SETTINGS}
    samples: dict[str, dict[str, list[float]]] = {t: defaultdict(list) for t in VARIANTS}
    number = 0
    kept: dict[str, str] = {}  # a database of the real schema and one of the prototype, for the check
    for _ in range(repeats):
        for table, variants in VARIANTS.items():
            for label, dropped in variants.items():
                number += 1
                db = f"v{number}"
                migrate(client, db)
                for view in dropped:
                    client.command(f"DROP VIEW {db}.{view}")
                if label == PROTOTYPE:
                    for statement in PROTOTYPE_SQL:
                        client.command(statement.format(db=db))
                started = time.process_time()
                for i, block in enumerate(blocks[table]):
                    client.raw_insert(
                        f"{db}.{table}",
                        COLUMNS[table],
                        insert_block=block,
                        fmt="JSONEachRow",
                        settings={**settings, "insert_deduplication_token": f"{table}:{i}"},
                    )
                samples[table][label].append((time.process_time() - started) / len(blocks[table]) * 1000)
                if table == "trades" and label in ("all views", PROTOTYPE) and label not in kept:
                    kept[label] = db
                else:
                    client.command(f"DROP DATABASE {db} SYNC")
    cascade, prototype = kept["all views"], kept[PROTOTYPE]
    equal = all(
        client.query(BAR.format(table=f"{cascade}.{name}", where="")).result_rows
        == client.query(BAR.format(table=f"{prototype}.bars", where=f"WHERE level = {seconds}")).result_rows
        for seconds, name in LEVELS.items()
    )
    client.close()
    per_insert = {
        table: {label: round(statistics.median(values), 1) for label, values in by_label.items()}
        for table, by_label in samples.items()
    }
    return {
        "scenario": "views",
        "rate_trades_quotes": rate,
        "flush_seconds": FLUSH_SECONDS,
        "rows_per_flush": rows_per_flush,
        "repeats": repeats,
        "cpu_ms_per_insert_median": per_insert,
        "prototype_bars_equal": equal,
        "cpu_ms_per_flush_all_views": round(sum(v["all views"] for v in per_insert.values()), 1),
        "cpu_ms_per_insert_runs": {
            table: {label: [round(x, 1) for x in runs] for label, runs in by_label.items()}
            for table, by_label in samples.items()
        },
    }
