"""What each exported dataset holds: a table (or view) of tickpipe's, one UTC day of it, in order.

Raw tables are exported with every stored column (`SELECT *`: the EPHEMERAL inputs and ALIAS columns
are not stored); `bars_1m` is the finished one-minute bars of the `ohlcv_1m` view. Only these fixed
names are put into the SQL; the day and the S3 location are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # table or view in tickpipe's database
    columns: str  # the SELECT list
    time: str  # the column that places a row in a day
    order: str  # the order of rows inside each file

    def select(self, database: str) -> str:
        """The rows of the day [{start}, {start} + 1 day), with `{start:DateTime64(3, 'UTC')}` bound."""
        return (
            f"SELECT {self.columns} FROM `{database}`.{self.source}\n"  # noqa: S608 (fixed names)
            f"WHERE {self.time} >= {{start:DateTime64(3, 'UTC')}} "
            f"AND {self.time} < {{start:DateTime64(3, 'UTC')}} + INTERVAL 1 DAY\n"
            f"ORDER BY {self.order}"
        )


DATASETS: Final[dict[str, Dataset]] = {
    d.name: d
    for d in (
        Dataset("trades", "trades", "*", "timestamp", "symbol, timestamp, sequence"),
        Dataset("quotes", "quotes", "*", "timestamp", "symbol, timestamp, sequence"),
        Dataset("aggregates", "aggregates", "*", "timestamp", "symbol, timestamp, ev"),
        Dataset(
            "bars_1m",
            "ohlcv_1m",
            "symbol, toDateTime64(bucket, 3, 'UTC') AS bucket, open, high, low, close, volume, vwap, trades",
            "bucket",
            "symbol, bucket",
        ),
    )
}
