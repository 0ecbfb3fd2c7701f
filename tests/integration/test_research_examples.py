"""The two research examples run as a researcher runs them (configured by CLICKHOUSE_DSN), on a small
fixture database, and print figures computed independently from the fixture's events."""

from __future__ import annotations

import runpy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.research_data import (
    SYMBOLS,
    expected_minute_bars,
    expected_trades_with_quotes,
    load_session,
    session_events,
)

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EVENTS = session_events()


@pytest.fixture(scope="module")
def db(clickhouse: Any) -> Iterator[str]:
    name = f"tp_research_examples_{uuid.uuid4().hex[:8]}"
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
    load_session(clickhouse, name, EVENTS)
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def environment(clickhouse_dsn: str, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLICKHOUSE_DSN", clickhouse_dsn)
    monkeypatch.setenv("CLICKHOUSE_DATABASE", db)


def run_example(
    name: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, dict[str, Any]]:
    module = runpy.run_path(str(EXAMPLES / name), run_name="example")
    code = module["main"](args)
    return code, capsys.readouterr().out, module


@pytest.mark.usefixtures("environment")
def test_intraday_vwap_vs_close(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_example("intraday_vwap.py", [], capsys)
    assert code == 0, out
    assert "VWAP vs close on 2026-12-01" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.split()}
    for symbol in SYMBOLS:
        bars = expected_minute_bars(EVENTS, symbol)
        volume = sum(b[5] for b in bars)
        vwap = sum(b[6] * b[5] for b in bars) / volume
        close = bars[-1][4]
        row = lines[symbol]
        assert float(row[1].replace(",", "")) == pytest.approx(vwap, abs=1e-4)
        assert float(row[2].replace(",", "")) == pytest.approx(close, abs=1e-4)
        assert float(row[3].replace(",", "")) == pytest.approx(10_000 * (close - vwap) / vwap, abs=1e-3)


@pytest.mark.usefixtures("environment")
def test_trade_through_spread_statistics(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, module = run_example(
        "trade_through_spread.py", ["--hours", "2", "--staleness", "0.25"], capsys
    )
    assert code == 0, out
    assert "trades against the prevailing quote" in out
    from tickpipe_research import Research

    with Research.connect() as research:
        joined = research.trades_with_quotes(list(SYMBOLS), "2026-12-01", "2026-12-02", 0.25, as_="polars")
    stats = {row["symbol"]: row for row in module["spread_statistics"](joined).to_dicts()}
    for symbol in SYMBOLS:
        want = expected_trades_with_quotes(EVENTS, symbol, 250)
        through = sum(r["location"] in ("below_bid", "above_ask") for r in want)
        at = sum(r["location"] in ("at_bid", "at_ask") for r in want)
        row = stats[symbol]
        assert (row["trades"], row["through"], row["at_quote"]) == (len(want), through, at)
        assert row["with_quote"] == pytest.approx(sum(r["quote"] is not None for r in want) / len(want))
        positions = [r["position"] for r in want if r["quote"] is not None]
        assert row["mean_position"] == pytest.approx(sum(positions) / len(positions))
        assert f"{symbol}" in out
        assert str(len(want)) in out
