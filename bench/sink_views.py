"""What one flush costs ClickHouse, view by view (used by `python -m bench.sink views`).

At a steady rate the sink flushes every SINK_BATCH_SECONDS, so each flush is one small insert per
table (trades, quotes, aggregates), and each insert also runs the table's materialized views: the
bars (all four levels from one view, migration 040), the corrections view, `latest`. This measures
the CPU of one such insert (this process, chDB's threads included) in the real schema and with one
view or branch dropped, so the difference is that view's share. The rows are a simulated session at
`rate` trades+quotes per second cut into 0.5 s flushes, as the sink would see them.

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

# Per table: the variants, each the views dropped before inserting.
VARIANTS: dict[str, dict[str, list[str]]] = {
    "trades": {
        "all views": [],
        "without latest": ["latest_from_trades_mv"],
        "without bars": ["bars_from_trades_mv"],
        "table only": ["latest_from_trades_mv", "bars_from_trades_mv"],
    },
    "quotes": {
        "all views": [],
        "without latest": ["latest_from_quotes_mv"],
        "table only": ["latest_from_quotes_mv", "bars_from_quotes_mv"],
    },
    "aggregates": {
        "all views": [],
        "without corrections": ["bars_corrections_mv"],
        "without latest": ["latest_from_aggregates_mv"],
        "without bars": ["bars_from_aggregates_mv", "bars_corrections_mv"],
        "table only": ["bars_from_aggregates_mv", "bars_corrections_mv", "latest_from_aggregates_mv"],
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
    for _ in range(repeats):
        for table, variants in VARIANTS.items():
            for label, dropped in variants.items():
                number += 1
                db = f"v{number}"
                migrate(client, db)
                for view in dropped:
                    client.command(f"DROP VIEW {db}.{view}")
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
                client.command(f"DROP DATABASE {db} SYNC")
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
        "cpu_ms_per_flush_all_views": round(sum(v["all views"] for v in per_insert.values()), 1),
        "cpu_ms_per_insert_runs": {
            table: {label: [round(x, 1) for x in runs] for label, runs in by_label.items()}
            for table, by_label in samples.items()
        },
    }
