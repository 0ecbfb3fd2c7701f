"""The live console in a real browser (Debian's headless Chromium, driven by Playwright) against a
running pipeline: real Kafka, the processor and the sink as processes, chDB, `tickpipe web`.

History written before the console started must be drawn from ClickHouse, the stage table must fill
from the services' metrics, a new bar must arrive over the websocket within 2 s of its event
entering the pipeline, and all of that must go on while the sink is stopped and after it restarts.
The browser must start: this test never skips (Chromium missing is a failure, in CI and here).
Set WEB_SCREENSHOT=PATH to keep a screenshot of the page.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KafkaHandle
from tests.integration.web_pipeline import Feed, WebPipeline, pipeline_env
from tests.support import wait_for

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SYMBOLS = ("AAPL", "MSFT")
HISTORY_MINUTES = 4

# Counts the pixels of the candles' up and down colours in every canvas of the chart.
CANDLE_PIXELS = """() => {
  let up = 0, down = 0;
  for (const canvas of document.querySelectorAll('#chart canvas')) {
    const ctx = canvas.getContext('2d');
    if (!ctx || !canvas.width || !canvas.height) continue;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] === 0x26 && data[i + 1] === 0xa6 && data[i + 2] === 0x9a && data[i + 3] === 255) up++;
      if (data[i] === 0xef && data[i + 1] === 0x53 && data[i + 2] === 0x50 && data[i + 3] === 255) down++;
    }
  }
  return up + down;
}"""


@pytest.fixture
def pipeline(kafka: KafkaHandle, new_topic: Callable[..., str], tmp_path: Path) -> Iterator[WebPipeline]:
    raw, filtered = new_topic("raw"), new_topic("filtered")
    env = pipeline_env(kafka.bootstrap, raw, filtered, tmp_path / "chdb", tmp_path / "home")
    running = WebPipeline(tmp_path, env)
    try:
        yield running
    finally:
        running.stop_all()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_page_draws_history_and_live_candles_fills_stages_and_survives_a_sink_restart(
    kafka: KafkaHandle, pipeline: WebPipeline, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
    pipeline.migrate()
    pipeline.start("processor")
    pipeline.start("sink")
    feed = Feed(kafka.bootstrap, pipeline.env["RAW_TOPIC"], SYMBOLS)
    now = int(time.time())
    first_minute = now // 60 * 60 - 60 * HISTORY_MINUTES
    feed.history(first_minute, now // 60 * 60 - 60)  # whole minutes before the console starts
    history_minutes = set(range(first_minute, now // 60 * 60 - 60, 60))

    def history_bars() -> list[dict[str, Any]] | None:
        answer = get_json(f"{pipeline.url}api/bars?symbol=AAPL&interval=1m")
        times = {bar["time"] for bar in answer["bars"]}
        return answer["bars"] if answer["history"] == "ok" and history_minutes <= times else None

    pipeline.start("web")
    bars = wait_for(
        history_bars, "the history minutes in /api/bars (processor -> sink -> ClickHouse)", 90, 0.5
    )
    assert len([b for b in bars if b["time"] in history_minutes]) == HISTORY_MINUTES - 1
    live = feed.run_live()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{pipeline.url}?symbol=AAPL&interval=1m")
                check_page(page, feed, pipeline, errors)
                screenshot = os.environ.get("WEB_SCREENSHOT")
                page.screenshot(path=str(tmp_path / "web-console.png"))
                if screenshot:
                    shutil.copy(tmp_path / "web-console.png", screenshot)
            finally:
                browser.close()
    finally:
        feed.stopping.set()
        live.join(5)


def check_page(page: Any, feed: Feed, pipeline: WebPipeline, errors: list[str]) -> None:
    page.wait_for_function("() => Number(document.getElementById('chart').dataset.bars) >= 3", timeout=30_000)
    wait_for(lambda: page.evaluate(CANDLE_PIXELS) > 50, "candles drawn on the chart's canvas", 10)
    # the stage table: the processor and the sink up, with totals and lag from Kafka
    page.wait_for_function(
        """() => [...document.querySelectorAll('#stages tbody tr')].filter(
                 (tr) => ['processor', 'sink'].includes(tr.cells[0].textContent)
                         && tr.cells[1].textContent === 'yes' && tr.cells[3].textContent !== '?'
                         && tr.cells[4].textContent !== '?').length === 2""",
        timeout=30_000,
    )
    stages = {row[0]: row for row in table(page, "#stages")}
    assert set(stages) == {"producer", "processor", "sink", "console"}
    assert stages["producer"][1] == "no"  # not running in this test: shown as down, not hidden
    assert float(stages["processor"][3].replace(",", "")) >= feed.sent * 0.5
    assert table(page, "#prices")[0][0] == "AAPL"

    seen_within(page, feed, 2.0)  # a new bar update over the websocket within 2 s

    # the read-only SQL box: a read answers, a write is refused by ClickHouse
    page.fill("#sql", "SELECT count() AS n FROM aggregates WHERE symbol = 'AAPL'")
    page.click("#sql-form button")
    page.wait_for_function("() => document.querySelectorAll('#sql-result tbody tr').length === 1")
    assert int(table(page, "#sql-result")[0][0]) >= 60 * (HISTORY_MINUTES - 1)
    page.fill("#sql", "DROP TABLE aggregates")
    page.click("#sql-form button")
    page.wait_for_selector("#sql-error:not([hidden])")
    refusal = page.inner_text("#sql-error").lower()
    assert "refused" in refusal or "readonly" in refusal, refusal
    page.fill("#sql", "SELECT count() AS n FROM aggregates WHERE symbol = 'AAPL'")
    page.click("#sql-form button")  # the table is still there
    page.wait_for_function("() => document.querySelectorAll('#sql-result tbody tr').length === 1")
    assert int(table(page, "#sql-result")[0][0]) >= 60 * (HISTORY_MINUTES - 1)

    # the sink stops: live bars go on (the console reads Kafka, not the sink); history says so
    pipeline.services["sink"].stop(30)
    seen_within(page, feed, 2.0)
    note = get_json(f"{pipeline.url}api/bars?symbol=AAPL&interval=1m")["history"]
    assert note.startswith("unavailable"), note
    pipeline.start("sink")
    wait_for(
        lambda: get_json(f"{pipeline.url}api/bars?symbol=MSFT&interval=1m")["history"] == "ok",
        "history back",
        60,
    )
    seen_within(page, feed, 2.0)
    stages_up = """() => [...document.querySelectorAll('#stages tbody tr')]
                       .filter((tr) => tr.cells[1].textContent === 'yes').length === 3"""
    page.wait_for_function(stages_up, timeout=30_000)  # the restarted sink is back in the table
    sink_loading = """() => [...document.querySelectorAll('#stages tbody tr')].some((tr) =>
        tr.cells[0].textContent === 'sink' && !['0', '?'].includes(tr.cells[3].textContent))"""
    page.wait_for_function(sink_loading, timeout=60_000)  # and loading rows again
    page.select_option("#interval", "1s")
    # one-second bars: the history seconds from ClickHouse, the empty minute, the live seconds
    page.wait_for_function(
        "() => Number(document.getElementById('chart').dataset.bars) >= 150", timeout=20_000
    )
    assert page.inner_text("#status") == "AAPL 1s: live"
    assert "gap:" in page.inner_text("#gap")
    wait_for(lambda: page.evaluate(CANDLE_PIXELS) > 50, "one-second candles drawn", 10)
    assert not errors, errors


def seen_within(page: Any, feed: Feed, seconds: float) -> None:
    """Send one AAPL second with a distinctive close; the page must show it within `seconds`.

    The live feed holds off meanwhile, so no later event of the same second replaces that close.
    """
    with feed.paused:
        close = round(feed.prices["AAPL"] + 0.37, 2)
        sent = time.monotonic()
        feed.send("AAPL", int(time.time()), close=close)
        feed.flush()
        page.wait_for_function(
            f"() => document.getElementById('last-update').textContent.includes('C {close} ')",
            timeout=int(seconds * 1000),
        )
        took = time.monotonic() - sent
    assert took <= seconds
    print(f"event -> page: {took * 1000:.0f} ms")


def table(page: Any, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"{selector} tbody tr", "(rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )
    return rows
