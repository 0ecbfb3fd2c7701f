"""ClickHouse for the console: bar history and the read-only SQL box, through `tickpipe query`'s path.

The console never opens an embedded chDB folder itself: a process that opens one holds it until it
exits, and the sink could then not start again. On `chdb://` it asks the query endpoint of the live
sink that holds the folder (none while the sink is down: history is then unavailable and the live
bars carry on from Kafka); on `http(s)://` it opens a read-only client per request.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tickpipe_clickhouse.connect import Target
from tickpipe_clickhouse.query.client import live_endpoint, open_query_client, run_rows, run_saved
from tickpipe_web.bars import Bar, TradeRules, interval_seconds

MAX_ROWS = 1000  # rows the SQL box shows


class HistoryUnavailable(RuntimeError):
    """ClickHouse cannot be asked right now; the message says why."""


class History:
    def __init__(self, dsn: str, database: str):
        self.dsn = dsn
        self.database = database
        self.target = Target(dsn)

    def _client(self) -> Any:
        if self.target.embedded:
            endpoint = live_endpoint(self.target.folder)
            if endpoint is None:
                raise HistoryUnavailable("no running sink holds the chDB folder (history resumes with it)")
            return endpoint
        return open_query_client(self.dsn, self.database)

    def bars(self, symbol: str, interval: str, start: int, end: int) -> list[Bar]:
        """Bars of one symbol with bucket in [start, end) (Unix seconds), oldest first."""
        seconds = interval_seconds(interval)
        client = self._client()
        try:
            if seconds == 1:
                result = run_rows(
                    client, _SECOND_BARS, {"symbol": symbol, "from": str(start), "to": str(end)}
                )
            else:
                params = {"symbol": symbol, "interval": interval, "from": _iso(start), "to": _iso(end)}
                result = run_saved(client, "bars", params)
        finally:
            client.close()
        return [_bar(row) for row in result.result_rows]

    def trade_rules(self) -> TradeRules:
        """The condition rules of stock trades, from trade_conditions (the newest row per code)."""
        client = self._client()
        try:
            result = run_rows(client, _TRADE_RULES)
        finally:
            client.close()
        return TradeRules.from_rows(result.result_rows)

    def query(self, sql: str) -> tuple[list[str], list[list[Any]], bool]:
        """(column names, up to MAX_ROWS rows as JSON-able values, whether rows were cut)."""
        client = self._client()
        try:
            result = run_rows(client, sql)
        finally:
            client.close()
        rows = [[_jsonable(v) for v in row] for row in result.result_rows[:MAX_ROWS]]
        return list(result.column_names), rows, len(result.result_rows) > MAX_ROWS


# One-second bars are the `A` aggregates themselves, corrected (the rollups start at one minute).
_SECOND_BARS = """
SELECT toUnixTimestamp(toStartOfSecond(timestamp)) AS t, argMin(open, timestamp), max(high), min(low),
       argMax(close, timestamp), sum(volume)
FROM aggregates_latest
WHERE symbol = {symbol:String} AND ev = 'A'
  AND timestamp >= toDateTime64({from:Int64}, 3, 'UTC') AND timestamp < toDateTime64({to:Int64}, 3, 'UTC')
GROUP BY t ORDER BY t
"""

_TRADE_RULES = """
SELECT id, updates_open_close, updates_high_low, updates_volume FROM trade_conditions FINAL
"""


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _bar(row: Any) -> Bar:
    when = row[0]
    if isinstance(when, dt.datetime):
        t = int(when.replace(tzinfo=when.tzinfo or dt.UTC).timestamp())
    elif isinstance(when, str):
        t = int(dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp())
    else:
        t = int(when)
    return Bar(t, float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)
