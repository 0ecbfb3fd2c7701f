"""What the soak's latency probe costs inside the sink's chDB, by table size (`python -m bench soak-probe`).

    python -m bench soak-probe                            # 1, 5 and 10 minutes of trades at 10k/s
    python -m bench soak-probe --param minutes=1,5,10,30 --param trades_per_second=10000

The probe runs inside the sink's process (the sink's query endpoint) every 50 ms, so whatever it
costs is sink CPU. For each size, `trades` is filled (in SQL, with its rollup views) with that many
minutes of trades of 100 symbols ending now, then each probe asks `polls` times, and the CPU time
of this process (chDB runs in it) per poll is reported, with the rows ClickHouse read
(the engine's SelectedRows counter):
- `scan`: the probe `bench e2e` used before its key bound, bounded on `received` only (an ALIAS
  column outside the key): it reads every row of its eight symbols since the start, so its cost
  grows with the table;
- `key`: the soak's probe, bounded on the key (symbol, timestamp) from a watermark 10-20 s behind
  the newest trade seen: a few granules whatever the size.
Also reported: at 20 polls a second, the share of one core each probe takes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.e2e import PROBED_SYMBOLS
from bench.soak import KEY_PROBE, SCAN_PROBE, SLACK_MS
from tickpipe_clickhouse.connect import connect
from tickpipe_clickhouse.schema.migrations import migrate

SYMBOLS = PROBED_SYMBOLS + [f"S{i:02d}" for i in range(100 - len(PROBED_SYMBOLS))]
FILL = """
INSERT INTO p.trades (ev, symbol, timestamp, price, size, exchange, trade_id, tape, conditions,
                      sequence, received_delay_ms)
SELECT 'T', {symbols:Array(String)}[number % 100 + 1],
       fromUnixTimestamp64Milli(toInt64({start_ms:Int64} + number * {step_ms:Float64}), 'UTC'),
       round(100 + (number % 997) / 100, 2), 100, number % 20, toString(number), 3, [],
       {first:UInt64} + number, 2
FROM numbers({rows:UInt64})
"""


SELECTED = "SELECT value FROM system.events WHERE event = 'SelectedRows'"


def _selected_rows(client: Any) -> int:
    rows = client.query(SELECTED).result_rows
    return int(rows[0][0]) if rows else 0


def _measure(client: Any, sql: str, polls: int) -> dict[str, float]:
    read0 = _selected_rows(client)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(polls):
        # The key probe's watermark runs 10-20 s behind the newest trade (bench/soak.py).
        since = int(time.time() * 1000) - 2 * SLACK_MS
        client.query(sql, parameters={"symbols": PROBED_SYMBOLS, "since": since})
    cpu = (time.process_time() - cpu0) / polls
    wall = (time.perf_counter() - wall0) / polls
    read = (_selected_rows(client) - read0) / polls
    return {
        "cpu_ms_per_poll": round(cpu * 1000, 2),
        "wall_ms_per_poll": round(wall * 1000, 2),
        "rows_read_per_poll": round(read),
        "core_share_at_20_polls_per_s": round(cpu * 20, 3),
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    sizes = [int(m) for m in params.get("minutes", "1,5,10").split(",")]
    per_second = int(params.get("trades_per_second", "10000"))
    polls = int(params.get("polls", "40"))
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-probe-") as tmp:
        client = connect(f"chdb://{Path(tmp) / 'chdb'}")
        migrate(client, "p")
        filled_minutes, first = 0, 0
        for minutes in sorted(sizes):
            # Fill up to `minutes` of trades ending now (older minutes first, as a live table grows).
            add = minutes - filled_minutes
            rows = add * 60 * per_second
            now_ms = int(time.time() * 1000)
            client.command(
                FILL,
                parameters={
                    "symbols": SYMBOLS,
                    "start_ms": now_ms - add * 60_000,
                    "step_ms": 1000 / per_second,
                    "first": first,
                    "rows": rows,
                },
            )
            first += rows
            filled_minutes = minutes
            entry: dict[str, Any] = {"minutes_of_trades": minutes, "rows": first}
            for name, sql in (("scan", SCAN_PROBE), ("key", KEY_PROBE)):
                entry[name] = _measure(client, sql.replace("FROM trades", "FROM p.trades"), polls)
            out.append(entry)
        client.close()
    parts = [
        f"{e['minutes_of_trades']} min ({e['rows']:,} trades): scan {e['scan']['cpu_ms_per_poll']} ms CPU "
        f"({e['scan']['core_share_at_20_polls_per_s']:.0%} of a core at 20/s, "
        f"{e['scan']['rows_read_per_poll']:,} rows read), key {e['key']['cpu_ms_per_poll']} ms "
        f"({e['key']['rows_read_per_poll']:,} rows)"
        for e in out
    ]
    return {
        "scenario": "soak-probe",
        "trades_per_second": per_second,
        "sizes": out,
    }, "soak-probe: " + "; ".join(parts)
