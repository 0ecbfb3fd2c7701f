"""The research API's pure parts: times in, symbol lists, the SQL's placeholders, export locations."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tickpipe_research import NaiveTimeError
from tickpipe_research import sql as research_sql
from tickpipe_research.export.command import ExportError, days_between, open_direct
from tickpipe_research.export.day import S3Access
from tickpipe_research.export.location import ExportLocation, clickhouse_url
from tickpipe_research.export.settings import ExportSettings
from tickpipe_research.session import symbol_list
from tickpipe_research.times import ch_time, milliseconds, to_utc, window


def test_times_are_aware_and_utc() -> None:
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert to_utc(dt.datetime(2026, 12, 1, 9, 30, tzinfo=ny)) == dt.datetime(
        2026, 12, 1, 14, 30, tzinfo=dt.UTC
    )
    assert to_utc(dt.date(2026, 12, 1)) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert to_utc("2026-12-01") == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert to_utc("2026-12-01T14:30:00.250Z").microsecond == 250_000
    assert ch_time("2026-12-01T09:30:00.000123-05:00") == "2026-12-01 14:30:00.000123"
    with pytest.raises(NaiveTimeError, match="has no timezone"):
        to_utc(dt.datetime(2026, 12, 1, 14, 30))
    with pytest.raises(NaiveTimeError):
        to_utc("2026-12-01T14:30:00")
    with pytest.raises(ValueError, match="not an ISO date"):
        to_utc("yesterday")
    with pytest.raises(ValueError, match="must be after start"):
        window("2026-12-02", "2026-12-01")
    assert milliseconds(dt.timedelta(milliseconds=1500)) == 1500
    assert milliseconds(0.25) == 250
    with pytest.raises(ValueError, match="negative"):
        milliseconds(-1)


def test_symbol_lists() -> None:
    assert symbol_list("AAPL") == ["AAPL"]
    assert symbol_list(["MSFT", " AAPL ", "MSFT", ""]) == ["MSFT", "AAPL"]
    with pytest.raises(ValueError, match="at least one symbol"):
        symbol_list([])


def test_every_value_in_the_sql_is_a_placeholder() -> None:
    statements = [
        *(research_sql.bars_sql(i) for i in research_sql.BAR_SECONDS),
        research_sql.ticks_sql("trades", limited=True),
        research_sql.ticks_sql("quotes", limited=False),
        research_sql.latest_sql(every_symbol=False),
        research_sql.trades_with_quotes_sql(),
    ]
    for text in statements:
        assert "{trade_filter}" not in text
        assert "'AAPL'" not in text
        assert set(re.findall(r"\{(\w+):", text)) <= {"symbols", "start", "end", "limit", "max_staleness_ms"}
    with pytest.raises(ValueError, match="interval must be one of 1m, 5m, 1h, 1d"):
        research_sql.bars_sql("2m")


def test_export_locations_and_urls() -> None:
    location = ExportLocation.parse("s3://research/tickpipe/")
    day = dt.date(2026, 12, 1)
    assert location.day_prefix("trades", day) == "tickpipe/trades/date=2026-12-01/"
    assert (
        location.part_template("trades", day)
        == "tickpipe/trades/date=2026-12-01/symbol={_partition_id}/part.parquet"
    )
    assert ExportLocation.parse("s3://bare").day_prefix("quotes", day) == "quotes/date=2026-12-01/"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        ExportLocation.parse("research/tickpipe")
    key = location.part_template("trades", day)
    assert (
        clickhouse_url("http://127.0.0.1:9000/", "us-east-1", "research", key)
        == f"http://127.0.0.1:9000/research/{key}"
    )
    assert clickhouse_url(None, "eu-west-1", "research", "a/b.parquet") == (
        "https://research.s3.eu-west-1.amazonaws.com/a/b.parquet"
    )
    assert days_between(day, day + dt.timedelta(days=2))[-1] == dt.date(2026, 12, 3)
    with pytest.raises(ExportError):
        days_between(day, day - dt.timedelta(days=1))


def test_s3_credentials_are_bound_parameters() -> None:
    call, params = S3Access(None, "us-east-1", "AKIA", "s3cr3t", "tok").function("url")
    assert call == "s3({url:String}, {s3_key:String}, {s3_secret:String}, {s3_token:String}, 'Parquet')"
    assert params == {"s3_key": "AKIA", "s3_secret": "s3cr3t", "s3_token": "tok"}
    assert S3Access(None, "us-east-1").function("glob") == ("s3({glob:String}, 'Parquet')", {})


def test_export_will_not_take_the_folder_from_a_live_sink(tmp_path: Path) -> None:
    import json
    import os

    # a live process that is not us (the parent) advertising an endpoint on this folder
    (tmp_path / "tickpipe-query.json").write_text(
        json.dumps({"url": "http://127.0.0.1:1", "pid": os.getppid(), "token": "t", "database": "tickpipe"})
    )
    settings = ExportSettings(clickhouse_dsn=f"chdb://{tmp_path}")
    with pytest.raises(ExportError, match="a running sink holds"):
        open_direct(settings)
    with pytest.raises(ValueError, match="datasets are"):
        ExportSettings(export_datasets="trades,ticks")


class FakeSchemaClient:
    """SHOW CREATE TABLE answers and the statements run (the TTL logic needs nothing else)."""

    def __init__(self, ttl: str) -> None:
        self.ttl = ttl
        self.ran: list[str] = []

    def command(self, sql: str) -> str:
        if sql.startswith("SHOW CREATE TABLE"):
            return (
                f"CREATE TABLE t (timestamp DateTime64(3)) ENGINE = MergeTree ORDER BY timestamp {self.ttl}"
            )
        self.ran.append(sql)
        return ""


def test_raw_ttl_leaves_an_operators_tiering_ttl_alone() -> None:
    from tickpipe_clickhouse.schema.migrations import apply_raw_ttl

    tiering = FakeSchemaClient("TTL toDateTime(timestamp) + toIntervalDay(7) TO VOLUME 'cold'")
    apply_raw_ttl(tiering, "tp", 0)
    apply_raw_ttl(tiering, "tp", 30)
    assert tiering.ran == []
    plain = FakeSchemaClient("TTL toDateTime(timestamp) + toIntervalDay(7)")
    apply_raw_ttl(plain, "tp", 0)
    assert plain.ran == [f"ALTER TABLE `tp`.{t} REMOVE TTL" for t in ("aggregates", "trades", "quotes")]
