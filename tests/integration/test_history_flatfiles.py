"""`tickpipe backfill --source flatfiles`: the simulator's flat files in moto's S3, read by ClickHouse's
s3() table function into `aggregates`; equal to the `AM` events the websocket sent, loaded once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import S3Handle
from tickpipe_clickhouse.schema.migrations import migrate
from tickpipe_history.flatfiles import FlatFileLoader
from tickpipe_history.store import HistoryStore
from tickpipe_simulator.flatfiles import minute_aggs_files, upload
from tickpipe_simulator.spec import MarketSpec
from tickpipe_simulator.symbols import DEFAULT_STOCKS
from tickpipe_simulator.truth import session_events

pytestmark = pytest.mark.integration

# Four minutes across midnight UTC: two day files.
START_MS = int(dt.datetime(2024, 3, 7, 23, 58, tzinfo=dt.UTC).timestamp() * 1000)
SPEC = MarketSpec(seed=8, symbols=DEFAULT_STOCKS[:6], rate=1500, start_ms=START_MS, session_seconds=240)
FROM_MS = int(dt.datetime(2024, 3, 7, tzinfo=dt.UTC).timestamp() * 1000)
TO_MS = FROM_MS + 3 * 86_400_000  # three days asked for: the third has no file yet


def test_flat_files_load_once_and_equal_the_minute_aggregates(
    s3: S3Handle, bucket: str, clickhouse: Any, ch_database: str
) -> None:
    files = minute_aggs_files(SPEC)
    assert sorted(files) == [
        "us_stocks_sip/minute_aggs_v1/2024/03/2024-03-07.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2024/03/2024-03-08.csv.gz",
    ]
    client = s3.client()
    upload(client, bucket, files)
    migrate(clickhouse, ch_database)
    credentials = client._request_signer._credentials
    loader = FlatFileLoader(
        HistoryStore(clickhouse, ch_database),
        client,
        bucket,
        s3.endpoint,
        credentials.access_key,
        credentials.secret_key,
    )
    expected = sorted(
        (e["sym"], e["s"], e["o"], e["h"], e["l"], e["c"], e["v"])
        for e in session_events(SPEC)
        if e["ev"] == "AM"
    )

    first = loader.run(FROM_MS, TO_MS)
    rows = clickhouse.query(
        "SELECT symbol, toUnixTimestamp64Milli(timestamp), open, high, low, close, volume "
        f"FROM `{ch_database}`.aggregates WHERE ev = 'AM'"
    ).result_rows
    assert sorted(tuple(r) for r in rows) == expected
    assert first.rows_inserted == len(expected) > 0
    assert first.chunks == {"done": 2, "partial": 1}
    assert first.failures == ["us_stocks_sip/minute_aggs_v1/2024/03/2024-03-09.csv.gz: no such file yet"]

    second = loader.run(FROM_MS, TO_MS)
    assert second.chunks_skipped == 2
    assert second.rows_inserted == 0
    again = loader.run(FROM_MS, TO_MS, refetch=True)
    assert again.rows_inserted == 0
    count = clickhouse.query(f"SELECT count() FROM `{ch_database}`.aggregates").result_rows[0][0]
    assert count == len(expected)
