"""`tickpipe export` on the real engine (chDB) into moto's S3 server: layout, manifest, a day replaced
exactly, and the files read back by pyarrow, polars and DuckDB, row for row against ClickHouse."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest

from tests.conftest import S3Handle
from tests.research_data import START_MS, load_session, session_events
from tickpipe.config import load_settings
from tickpipe_cli.cli import main
from tickpipe_research.export.command import ExportError, run_export
from tickpipe_research.export.datasets import DATASETS
from tickpipe_research.export.settings import ExportSettings
from tickpipe_research.frames import arrow_table

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 12, 1)
DAY_MS = START_MS - (14 * 60 + 30) * 60_000  # 2026-12-01 00:00 UTC


def edge_trades() -> list[dict[str, Any]]:
    """Trades 1 ms either side of the day (not exported) and at its first millisecond (exported)."""
    return [
        {
            "ev": "T",
            "symbol": "AAPL",
            "ts_ms": ts,
            "price": 200.0,
            "size": 1.0,
            "sequence": n,
            "received_ns": 1,
        }
        for n, ts in enumerate((DAY_MS - 1, DAY_MS, DAY_MS + 86_400_000), start=90_000)
    ]


@pytest.fixture(scope="module")
def db(clickhouse: Any) -> Iterator[str]:
    name = f"tp_research_export_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
    load_session(clickhouse, name, [*session_events(), *edge_trades()])
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


def settings_for(clickhouse_dsn: str, db: str, s3: S3Handle, bucket: str) -> ExportSettings:
    return load_settings(
        ExportSettings,
        {
            "clickhouse_dsn": clickhouse_dsn,
            "clickhouse_database": db,
            "export_uri": f"s3://{bucket}/cold",
            "aws_endpoint_url": s3.endpoint,
        },
    )


def clickhouse_rows(clickhouse: Any, db: str, dataset: str) -> pa.Table:
    sql = DATASETS[dataset].select(db)
    return arrow_table(
        clickhouse.raw_query(sql, parameters={"start": "2026-12-01 00:00:00.000"}, fmt="ArrowStream")
    )


def rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of `columns`, sorted (file order across symbols is not the table's)."""
    data = table.select(columns).to_pylist()
    return sorted((tuple(r[c] for c in columns) for r in data), key=repr)


def test_export_layout_manifest_and_three_readers(
    clickhouse: Any, clickhouse_dsn: str, db: str, s3: S3Handle, bucket: str, tmp_path: Path
) -> None:
    settings = settings_for(clickhouse_dsn, db, s3, bucket)
    done = run_export(settings, [DAY], client=clickhouse, s3=s3.client())
    assert [d.dataset for d in done] == ["trades", "quotes", "aggregates", "bars_1m"]
    client = s3.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    for dataset in DATASETS:
        assert f"cold/{dataset}/date=2026-12-01/_manifest.json" in keys
        for symbol in ("AAPL", "MSFT"):
            assert f"cold/{dataset}/date=2026-12-01/symbol={symbol}/part.parquet" in keys
    assert len(keys) == 4 * 3

    fs = pafs.S3FileSystem(
        endpoint_override=s3.endpoint, access_key="testing", secret_key="testing", region="us-east-1"
    )
    options = {
        "aws_endpoint_url": s3.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    mirror = tmp_path / "mirror"
    for key in keys:
        (mirror / key).parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(mirror / key))

    for dataset in DATASETS:
        expected = clickhouse_rows(clickhouse, db, dataset)
        columns = expected.column_names
        manifest = json.loads((mirror / f"cold/{dataset}/date=2026-12-01/_manifest.json").read_text())
        assert manifest["rows"] == expected.num_rows > 0
        by_symbol = {f["symbol"]: f for f in manifest["files"]}
        for symbol in ("AAPL", "MSFT"):
            entry = by_symbol[symbol]
            assert entry["rows"] == sum(1 for s in expected.column("symbol").to_pylist() if s == symbol)
            assert entry["sha256"] == hashlib.sha256((mirror / entry["key"]).read_bytes()).hexdigest()

        root = f"cold/{dataset}"
        by_pyarrow = pads.dataset(f"{bucket}/{root}", filesystem=fs, format="parquet", partitioning="hive")
        assert rows(by_pyarrow.to_table(), columns) == rows(expected, columns), f"pyarrow {dataset}"

        by_polars = pl.read_parquet(
            f"s3://{bucket}/{root}/**/*.parquet", storage_options=options, hive_partitioning=True
        )
        assert by_polars.height == expected.num_rows
        assert rows(by_polars.select(columns).to_arrow(), columns) == rows(expected, columns), (
            f"polars {dataset}"
        )

        # DuckDB from PyPI reads S3 through its httpfs extension, a download this machine cannot make:
        # it reads a local copy of the same objects.
        relation = duckdb.sql(
            f"SELECT * FROM read_parquet('{mirror / root}/*/*/*.parquet', hive_partitioning = true)"
        )
        assert relation is not None
        by_duckdb = relation.to_arrow_table()
        assert rows(by_duckdb, columns) == rows(expected, columns), f"duckdb {dataset}"

    trades = clickhouse_rows(clickhouse, db, "trades")
    edge = [r["sequence"] for r in trades.to_pylist() if r["price"] == 200.0]
    assert edge == [90_001], "only the trade inside the UTC day"


def test_reexport_replaces_the_day_exactly(
    clickhouse: Any,
    clickhouse_dsn: str,
    db: str,
    s3: S3Handle,
    bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = settings_for(clickhouse_dsn, db, s3, bucket)
    client = s3.client()
    client.put_object(
        Bucket=bucket, Key="cold/trades/date=2026-12-01/symbol=GONE/part.parquet", Body=b"stale"
    )
    client.put_object(Bucket=bucket, Key="cold/trades/date=2026-11-30/keep.txt", Body=b"another day")
    scratch = f"tp_research_scratch_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"DROP DATABASE IF EXISTS {scratch}")
    load_session(clickhouse, scratch, session_events())
    try:
        first = run_export(
            settings.model_copy(update={"clickhouse_database": scratch, "export_datasets": "trades"}),
            [DAY],
            clickhouse,
            client,
        )
        clickhouse.command(f"DELETE FROM {scratch}.trades WHERE symbol = 'MSFT'")
        code = main(
            [
                "export",
                "--date",
                "2026-12-01",
                "--clickhouse-dsn",
                clickhouse_dsn,
                "--clickhouse-database",
                scratch,
                "--export-uri",
                f"s3://{bucket}/cold",
                "--export-datasets",
                "trades",
                "--aws-endpoint-url",
                s3.endpoint,
            ]
        )
        assert code == 0
        assert "trades: " in capsys.readouterr().out
        aapl = clickhouse.query(f"SELECT count() FROM {scratch}.trades").result_rows[0][0]
    finally:
        clickhouse.command(f"DROP DATABASE IF EXISTS {scratch}")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="cold/trades/")["Contents"])
    assert keys == [
        "cold/trades/date=2026-11-30/keep.txt",
        "cold/trades/date=2026-12-01/_manifest.json",
        "cold/trades/date=2026-12-01/symbol=AAPL/part.parquet",
    ]
    manifest = json.loads(client.get_object(Bucket=bucket, Key=keys[1])["Body"].read())
    assert manifest["rows"] == aapl < first[0].rows
    assert [f["symbol"] for f in manifest["files"]] == ["AAPL"]


def test_a_failed_export_says_why_without_the_secret(
    clickhouse: Any, clickhouse_dsn: str, db: str, s3: S3Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-do-not-print")
    settings = settings_for(clickhouse_dsn, db, s3, f"tp-missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ExportError) as failed:
        run_export(settings, [DAY], client=clickhouse, s3=s3.client())
    assert "NoSuchBucket" in str(failed.value) or "does not exist" in str(failed.value)
    assert "s3cr3t-do-not-print" not in str(failed.value)


def test_clickhouse_failing_to_reach_s3_is_reported_without_the_secret(
    clickhouse: Any, clickhouse_dsn: str, db: str, s3: S3Handle, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickpipe.process import free_port

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-do-not-print")
    closed = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(clickhouse_dsn, db, s3, bucket).model_copy(
        update={"export_clickhouse_s3_endpoint": closed, "export_datasets": "bars_1m"}
    )
    with pytest.raises(ExportError) as failed:
        run_export(settings, [DAY], client=clickhouse, s3=s3.client())
    assert "Connection refused" in str(failed.value)
    assert "s3cr3t-do-not-print" not in str(failed.value)
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert not [o for o in listed if o["Key"].endswith("_manifest.json")], "no manifest for a failed day"
