"""`tickpipe record`: write a live or simulated feed to a compressed NDJSON file.

It connects with the official `polygon-api-client` WebSocketClient (raw mode, so frames are kept
exactly as they arrived) and appends one line per frame with its receive time in Unix ns. It
stops on SIGINT/SIGTERM, after `--seconds`, after `--max-frames`, or once the feed has been quiet
for `--idle-seconds`; the file is always closed cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr

from tickpipe.config import BaseServiceSettings
from tickpipe_simulator.recording import frame_line, header_line, open_recording

log = logging.getLogger(__name__)


class RecorderSettings(BaseServiceSettings):
    """The feed to record, named as in the configuration contract (POLYGON_*)."""

    polygon_api_key: SecretStr = Field(SecretStr(""), description="API key (secret)")
    polygon_feed: str = Field("socket.polygon.io", min_length=1, description="websocket host[:port]")
    polygon_secure: bool = Field(True, description="wss (true) or ws (false)")
    polygon_market: str = Field("stocks", min_length=1, description="stocks, crypto, forex, ...")


@dataclass
class RecordResult:
    frames: int
    bytes: int
    path: Path


@dataclass(frozen=True)
class StopRules:
    seconds: float | None = None
    max_frames: int | None = None
    idle_seconds: float | None = None


async def record(
    settings: RecorderSettings,
    topics: list[str],
    out: Path,
    rules: StopRules,
    stop: asyncio.Event | None = None,
) -> RecordResult:
    """Record until a stop rule fires or `stop` is set; returns what was written."""
    from polygon import WebSocketClient

    stop = stop or asyncio.Event()
    client = WebSocketClient(
        api_key=settings.polygon_api_key.get_secret_value(),
        feed=settings.polygon_feed,
        market=settings.polygon_market,
        secure=settings.polygon_secure,
        raw=True,
        subscriptions=topics,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = RecordResult(0, 0, out)
    last_frame = started

    out.parent.mkdir(parents=True, exist_ok=True)
    with open_recording(out, "wb") as handle:
        handle.write(
            header_line(
                feed=f"{settings.polygon_feed}/{settings.polygon_market}",
                subscriptions=topics,
                started_ns=time.time_ns(),
            )
        )

        async def on_frame(raw: str | bytes) -> None:
            nonlocal last_frame
            line = frame_line(time.time_ns(), raw)
            handle.write(line)
            result.frames += 1
            result.bytes += len(line)
            last_frame = loop.time()
            if rules.max_frames is not None and result.frames >= rules.max_frames:
                stop.set()

        connection = asyncio.create_task(client.connect(on_frame), name="recorder-connection")
        try:
            while not stop.is_set() and not connection.done():
                now = loop.time()
                if rules.seconds is not None and now - started >= rules.seconds:
                    break
                if (
                    rules.idle_seconds is not None
                    and result.frames
                    and now - last_frame >= rules.idle_seconds
                ):
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.2)
        finally:
            if not connection.done():
                with contextlib.suppress(Exception):
                    await client.close()
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(connection, timeout=5)
            failure = connection.exception() if connection.done() and not connection.cancelled() else None
            if failure is not None:
                raise failure
    log.info("recording closed", extra={"fields": {"frames": result.frames, "path": str(out)}})
    return result


def run_recorder(settings: RecorderSettings, topics: list[str], out: Path, rules: StopRules) -> RecordResult:
    async def main() -> RecordResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await record(settings, topics, out, rules, stop)

    return asyncio.run(main())
