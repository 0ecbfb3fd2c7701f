"""Wiring of `tickpipe web`: the feed reader, the stage poller, the console and the aiohttp server."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable

from aiohttp import web

from tickpipe_demo.monitor import KafkaWatcher
from tickpipe_web.console import Console
from tickpipe_web.feed import FeedReader
from tickpipe_web.history import History
from tickpipe_web.server import build_app
from tickpipe_web.settings import WebSettings, is_loopback
from tickpipe_web.stages import StageReader, StageSettings

log = logging.getLogger(__name__)

STAGE_SECONDS = 1.0


def run_web(settings: WebSettings, ready: Callable[[str], None] | None = None) -> int:
    return asyncio.run(_serve(settings, ready))


async def _serve(settings: WebSettings, ready: Callable[[str], None] | None) -> int:
    history = History(settings.clickhouse_dsn.get_secret_value(), settings.clickhouse_database)
    console = Console(history)
    token = settings.web_token.get_secret_value() if settings.web_token else None
    app = build_app(console, token, is_loopback(settings.web_host))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port)
    await site.start()
    port = runner.addresses[0][1]
    shown = f"[{settings.web_host}]" if ":" in settings.web_host else settings.web_host
    url = f"http://{shown}:{port}/"
    feed = FeedReader(settings.kafka_config(), settings.filtered_topic, console.deliver_threadsafe).start()
    stop = threading.Event()
    poller = threading.Thread(target=_poll_stages, args=(settings, console, feed, stop), daemon=True)
    poller.start()
    log.info("console at %s, reading %s", url, settings.filtered_topic)
    if ready is not None:
        ready(url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        stop.set()
        feed.stop()
        await runner.cleanup()
        poller.join(5)
    return 0


def _poll_stages(settings: WebSettings, console: Console, feed: FeedReader, stop: threading.Event) -> None:
    """Every second: the services' metrics and lags, and the console's own row, for /api/stages."""
    metrics = {
        stage: url
        for stage, url in (
            ("producer", settings.web_producer_metrics),
            ("processor", settings.web_processor_metrics),
            ("sink", settings.web_sink_metrics),
        )
        if url
    }
    stage_settings = StageSettings(
        metrics,
        settings.raw_topic,
        settings.filtered_topic,
        settings.processor_group_id,
        settings.sink_group_id,
    )
    watcher = KafkaWatcher(settings.kafka_bootstrap_servers)
    reader = StageReader(stage_settings, watcher)
    before: tuple[float, int] | None = None
    try:
        while not stop.wait(STAGE_SECONDS):
            try:
                rows = reader.read()
                now, consumed = time.monotonic(), feed.consumed
                rate = None if before is None else (consumed - before[1]) / max(1e-9, now - before[0])
                before = (now, consumed)
                rows.append(
                    {
                        "stage": "console",
                        "up": feed.assigned.is_set(),
                        "events_per_s": rate,
                        "total": consumed,
                        "lag": _own_lag(watcher, settings.filtered_topic, feed),
                        "dlq": None,
                        "gaps": None,
                        "gap_seconds": None,
                    }
                )
                console.stages = rows
            except Exception:
                log.exception("reading the stages failed")
    finally:
        reader.close()
        watcher.close()


def _own_lag(watcher: KafkaWatcher, topic: str, feed: FeedReader) -> int | None:
    if not feed.assigned.is_set():
        return None
    try:
        ends = watcher.end_offsets(topic)
    except Exception:
        return None
    positions = dict(feed.positions)
    return sum(max(0, end - positions[p]) for p, end in ends.items() if p in positions)
