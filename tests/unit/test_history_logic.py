"""Pure logic of `tickpipe backfill`: chunking, times, page validation, rate limiting, progress."""

from __future__ import annotations

import io
import json

import orjson
import pytest

from tickpipe.config import ConfigError
from tickpipe_history.cli import parse_when
from tickpipe_history.datasets import DATASETS, chunks
from tickpipe_history.pages import AggBar, Invalid, RestTrade, decode, trade_identity
from tickpipe_history.progress import JsonProgress
from tickpipe_history.rate_limit import RateLimiter

DAY = 86_400_000
D0 = 1_709_769_600_000  # 2024-03-07T00:00:00Z


def test_chunks_are_per_symbol_and_utc_day_and_never_cross_midnight() -> None:
    got = [
        (c.symbol, c.start_ms, c.end_ms) for c in chunks(DATASETS["trades"], ["A", "B"], D0 + 5, D0 + DAY + 7)
    ]
    assert got == [
        ("A", D0 + 5, D0 + DAY),
        ("A", D0 + DAY, D0 + DAY + 7),
        ("B", D0 + 5, D0 + DAY),
        ("B", D0 + DAY, D0 + DAY + 7),
    ]
    market_wide = list(chunks(DATASETS["grouped_daily"], ["A", "B"], D0, D0 + 2 * DAY))
    assert [(c.symbol, c.day.isoformat()) for c in market_wide] == [("*", "2024-03-07"), ("*", "2024-03-08")]
    assert len(list(chunks(DATASETS["conditions"], ["A"], D0, D0 + 9 * DAY))) == 1


def test_times_are_days_iso_or_milliseconds() -> None:
    assert parse_when("2024-03-07", end=False) == D0
    assert parse_when("2024-03-07", end=True) == D0 + DAY  # a last day is included whole
    assert parse_when("2024-03-07T14:30:00Z", end=False) == D0 + 14 * 3_600_000 + 30 * 60_000
    assert parse_when("2024-03-07T14:30:00", end=True) == D0 + 14 * 3_600_000 + 30 * 60_000
    assert parse_when(str(D0 + 1), end=False) == D0 + 1
    with pytest.raises(ConfigError, match="yesterday"):
        parse_when("yesterday", end=False)


def _page(results: list[dict[str, object]], next_url: str | None = None) -> bytes:
    body: dict[str, object] = {"results": results, "status": "OK", "request_id": "x"}
    if next_url:
        body["next_url"] = next_url
    return orjson.dumps(body)


TRADE = {"sip_timestamp": 1_709_821_800_004_000_000, "price": 140.0, "size": 20, "exchange": 3, "id": "7"}


def test_a_valid_page_decodes_with_its_next_url_and_identity() -> None:
    rows, next_url = decode(
        _page([{**TRADE, "sequence_number": 3, "tape": 3}], "http://h/v3/trades/X?cursor=c"), RestTrade
    )
    assert next_url == "http://h/v3/trades/X?cursor=c"
    assert trade_identity(rows[0]) == (1_709_821_800_004, 3, 3, "7")
    assert rows[0].conditions is None
    assert decode(_page([]), AggBar) == ([], None)
    assert decode(orjson.dumps({"status": "OK"}), AggBar) == ([], None)  # an empty range has no results


@pytest.mark.parametrize(
    ("body", "reason", "names"),
    [
        (_page([{**TRADE, "price": "bad", "sequence_number": 1}], "http://h/n"), "invalid_row", "price"),
        (_page([{**TRADE, "sequence_number": -1}], "http://h/n"), "invalid_row", "sequence_number"),
        (_page([{k: v for k, v in TRADE.items() if k != "sip_timestamp"}]), "invalid_row", "sip_timestamp"),
        (b"<html>gateway</html>", "not_json", ""),
        (orjson.dumps({"status": "ERROR", "results": []}), "status_not_ok", "ERROR"),
    ],
)
def test_an_invalid_page_says_why_and_keeps_its_next_url(body: bytes, reason: str, names: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode(body, RestTrade)
    assert caught.value.reason == reason
    assert names in caught.value.detail
    if reason == "invalid_row" and b"next_url" in body:
        assert caught.value.next_url == "http://h/n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_requests_and_pauses_everyone() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock.time, sleep=clock.sleep)  # 2 per second, burst 2
    for _ in range(6):
        limiter.acquire()
    assert clock.now == pytest.approx(2.0)  # 2 at once, then one every 0.5 s
    limiter.pause(5)
    limiter.acquire()
    assert clock.now >= 7.0
    unlimited = RateLimiter(0, clock=clock.time, sleep=clock.sleep)
    before = clock.now
    for _ in range(100):
        unlimited.acquire()
    assert clock.now == before


def test_json_progress_lines_carry_rate_and_eta() -> None:
    out = io.StringIO()
    progress = JsonProgress(4, out, every_s=0)
    progress.advance(1, 1000)
    progress.advance(1, 3000)
    progress.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["chunks_done"] for line in lines] == [1, 2, 2]
    assert lines[-1]["rows"] == 4000
    assert lines[-1]["chunks_total"] == 4
    assert lines[-1]["eta_s"] is not None
    assert all(line["event"] == "backfill_progress" for line in lines)
