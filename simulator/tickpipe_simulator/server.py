"""The simulator's server: websocket feed, REST, health, stats and faults on one port (aiohttp).

/stocks                      the websocket feed (the official client builds ws://HOST:PORT/stocks)
GET  /healthz                200 while the server runs
GET  /_sim/stats             the session spec, the feed state, per-connection and total counts
POST /_sim/fault             arm a fault (JSON, see faults.py)
POST /_sim/rest_fault        arm a REST fault: 429, 403, delay, a corrupt page (see rest_faults.py)
GET  /v2/aggs/...            REST bars (see rest.py)
GET  /v3/...                 REST trades, quotes, tickers and conditions (see rest_v3.py)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tickpipe_simulator.bars import BarHistory
from tickpipe_simulator.faults import FaultError, parse_fault
from tickpipe_simulator.feed import Feed, generated_batches, replay_batches
from tickpipe_simulator.hub import Hub
from tickpipe_simulator.market import Market
from tickpipe_simulator.reference import ticker_versions
from tickpipe_simulator.rest import (
    RestError,
    check_key,
    error_response,
    grouped_daily,
    json_response,
    range_aggs,
)
from tickpipe_simulator.rest_faults import RestFaults, parse_rest_fault
from tickpipe_simulator.rest_v3 import conditions, tickers, ticks
from tickpipe_simulator.settings import SimulatorSettings
from tickpipe_simulator.tick_history import TickHistory
from tickpipe_simulator.websocket import ProtocolOptions, serve_connection

log = logging.getLogger(__name__)

MARKETS = ("stocks", "crypto", "forex")


class Simulator:
    """One market's feed and the HTTP application serving it."""

    def __init__(self, settings: SimulatorSettings):
        self.settings = settings
        self.spec = settings.market_spec()
        self.market = Market(self.spec)
        self.history = BarHistory(self.market.tickers, self.market.scale.tolist(), settings.history_seconds)
        self.ticks = TickHistory(
            self.market.tickers,
            self.market.scale.tolist(),
            self.market.tapes.tolist(),
            settings.tick_history_seconds,
        )
        self.ticker_versions = ticker_versions(self.spec.symbols, self.spec.start_ms)
        self.rest_faults = RestFaults()
        self.rest_requests = 0
        for rest_fault in settings.rest_faults:
            self.rest_faults.arm(rest_fault)
        self.hub = Hub(
            self.spec.market,
            self.spec.kind.event_types,
            settings.max_frame_events,
            settings.max_connections_per_key,
        )
        for fault in settings.faults:
            self.hub.arm(fault)
        replay = settings.replay is not None
        batches = (
            replay_batches(settings.replay)
            if settings.replay
            else generated_batches(self.market, self.history, self.ticks)
        )
        wait = settings.wait_for_subscriber if settings.wait_for_subscriber is not None else replay
        self.feed = Feed(self.hub, batches, settings.speed, wait, settings.rest_lag_seconds)
        self.options = ProtocolOptions(
            api_keys=settings.key_set(),
            auth_timeout_s=settings.auth_timeout,
            max_buffer_bytes=settings.max_buffer_bytes,
            paced=settings.speed > 0,
            compression=settings.compression,
        )
        self._feed_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/fault", self._fault)
        app.router.add_post("/_sim/rest_fault", self._rest_fault)
        app.router.add_get("/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}", self._range)
        app.router.add_get("/v2/aggs/grouped/locale/us/market/stocks/{date}", self._grouped)
        app.router.add_get("/v3/trades/{ticker}", self._trades)
        app.router.add_get("/v3/quotes/{ticker}", self._quotes)
        app.router.add_get("/v3/reference/tickers", self._tickers)
        app.router.add_get("/v3/reference/conditions", self._conditions)
        app.router.add_get("/{market}", self._websocket)
        return app

    async def start(self) -> int:
        """Serve on the configured host and port; returns the bound port (useful with port 0)."""
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, reuse_address=True)
        await site.start()
        port = int(self._runner.addresses[0][1])
        self._feed_task = asyncio.create_task(self.feed.run(), name="feed")
        self._feed_task.add_done_callback(_log_crash)
        return port

    async def stop(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        for conn in list(self.hub.connections.values()):
            if conn.disconnected_at is None:
                conn.kick("force_disconnect", "The server is shutting down.", 1001)
        if self._runner is not None:
            await self._runner.cleanup()

    def stats(self) -> dict[str, Any]:
        session = self.spec.to_dict()  # MarketSpec.from_dict(stats["session"]) rebuilds the spec
        session.update(
            tickers=self.market.tickers,
            mode="replay" if self.settings.replay else "generated",
            replay=str(self.settings.replay) if self.settings.replay else None,
            speed=self.settings.speed,
            max_frame_events=self.settings.max_frame_events,
            market=self.spec.market,
        )
        feed = {
            "started": self.feed.started,
            "finished": self.feed.finished,
            "lag_s": round(self.feed.lag_s, 3),
            "max_lag_s": round(self.feed.max_lag_s, 3),
            "ticks_published": self.hub.ticks_published,
            "seconds_generated": self.market.index,
        }
        span = self.history.span
        rest = {
            "first_second_ms": span[0] if span else None,
            "last_second_ms": span[1] if span else None,
            "requests": self.rest_requests,
            "faulted": dict(self.rest_faults.served),
        }
        return {"session": session, "feed": feed, "rest": rest, **self.hub.snapshot()}

    # --- handlers ---------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return json_response({"ok": True, "feed_finished": self.feed.finished})

    async def _stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats())

    async def _fault(self, request: web.Request) -> web.Response:
        try:
            fault = parse_fault(await request.read())
        except FaultError as exc:
            raise RestError(400, str(exc)) from None
        armed = self.hub.arm(fault)
        log.info("fault armed", extra={"fields": {**fault.model_dump(), "connections": armed}})
        return json_response({"status": "OK", "fault": fault.model_dump(), "armed_on": armed})

    async def _rest_fault(self, request: web.Request) -> web.Response:
        try:
            fault = parse_rest_fault(await request.read())
        except FaultError as exc:
            raise RestError(400, str(exc)) from None
        self.rest_faults.arm(fault)
        log.info("REST fault armed", extra={"fields": fault.model_dump()})
        return json_response({"status": "OK", "fault": fault.model_dump()})

    async def _guard(self, request: web.Request) -> web.Response | None:
        """The key check, then any armed REST fault (None: answer normally)."""
        self.rest_requests += 1
        check_key(request, self.options.api_keys)
        return await self.rest_faults.answer(request.path)

    async def _range(self, request: web.Request) -> web.Response:
        return await self._guard(request) or range_aggs(request, self.history, self.options.api_keys)

    async def _grouped(self, request: web.Request) -> web.Response:
        return await self._guard(request) or grouped_daily(request, self.history, self.options.api_keys)

    async def _trades(self, request: web.Request) -> web.Response:
        return await self._guard(request) or ticks(request, self.ticks, "trades", self.rest_faults.corrupt)

    async def _quotes(self, request: web.Request) -> web.Response:
        return await self._guard(request) or ticks(request, self.ticks, "quotes", self.rest_faults.corrupt)

    async def _tickers(self, request: web.Request) -> web.Response:
        return await self._guard(request) or tickers(request, self.ticker_versions)

    async def _conditions(self, request: web.Request) -> web.Response:
        return await self._guard(request) or conditions(request)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        market = request.match_info["market"]
        served = self.spec.market
        if market != served:
            hint = f"; start one with --market {market}" if market in MARKETS else ""
            raise RestError(404, f"no feed at /{market}: this simulator serves /{served}{hint}")
        return await serve_connection(request, self.hub, self.options)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RestError as exc:
        return error_response(exc.status, exc.message)
    except web.HTTPNotFound:
        return error_response(404, f"Not found: {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            405, f"{request.method} is not allowed on {request.path} (allowed: {exc.allowed_methods})"
        )


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("feed crashed", exc_info=task.exception())


async def serve(settings: SimulatorSettings, ready: Callable[[int], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT; `ready(port)` is called once the port listens."""
    simulator = Simulator(settings)
    port = await simulator.start()
    spec = simulator.spec
    summary: dict[str, object] = {
        "seed": spec.seed,
        "symbols": len(spec.symbols),
        "rate": spec.rate,
        "profile": spec.profile,
    }
    summary |= {"start_ms": spec.start_ms, "session_seconds": spec.session_seconds, "speed": settings.speed}
    summary |= {"replay": str(settings.replay) if settings.replay else None}
    log.info("simulator listening", extra={"fields": {"host": settings.host, "port": port, **summary}})
    if ready is not None:
        ready(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("simulator stopping")
        await simulator.stop()
