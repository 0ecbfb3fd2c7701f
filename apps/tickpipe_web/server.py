"""The console's HTTP side (aiohttp): the page, `/ws`, `/api/bars`, `/api/stages`, `/api/prices`,
and `/api/query` (read-only SQL).

Nothing here writes: every route reads the in-memory book, the services' metrics, or ClickHouse
through the read-only query path. On loopback the Host header must name loopback (a DNS-rebinding
page cannot reach the console); a token, when set, is required of every request (header
`Authorization: Bearer`, or `?token=` once, which sets an HttpOnly cookie), compared in constant time.
A websocket or POST from another origin is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import WSMsgType, web

from tickpipe_web.bars import WINDOW, BadInterval, interval_seconds
from tickpipe_web.console import Client, Console
from tickpipe_web.history import HistoryUnavailable

log = logging.getLogger(__name__)

COOKIE = "tickpipe_web_token"
MAX_SQL = 64 * 1024
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)


def static_dir() -> Path:
    return Path(str(resources.files("tickpipe_web") / "static"))


def build_app(console: Console, token: str | None, loopback: bool) -> web.Application:
    app = web.Application(middlewares=[_guard(token, loopback)], client_max_size=MAX_SQL + 1024)
    app[CONSOLE] = console
    app.router.add_get("/", _index)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/ws", _ws)
    app.router.add_get("/api/bars", _bars)
    app.router.add_get("/api/stages", _stages)
    app.router.add_get("/api/prices", _prices)
    app.router.add_post("/api/query", _query)
    app.router.add_static("/static/", static_dir(), show_index=False, follow_symlinks=False)

    async def on_startup(_: web.Application) -> None:
        await console.start()

    async def on_cleanup(_: web.Application) -> None:
        await console.stop()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


# --- security ------------------------------------------------------------------------------------


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _guard(token: str | None, loopback: bool) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        if loopback and host not in _LOOPBACK_HOSTS:
            return web.Response(status=403, text="this console answers loopback host names only\n")
        origin = request.headers.get("Origin")
        checked = request.method != "GET" or request.path == "/ws"
        if origin is not None and checked and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text="cross-origin request refused\n")
        set_cookie = False
        if token is not None and request.path != "/healthz":
            supplied = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not supplied:
                supplied = request.query.get("token", "")
                set_cookie = bool(supplied)
            if not supplied:
                supplied = request.cookies.get(COOKIE, "")
            if not _same(supplied, token):
                return web.Response(status=401, text="a token is required (?token=... or Authorization)\n")
        response = await handler(request)
        if set_cookie and token is not None and not isinstance(response, web.WebSocketResponse):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.secure)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; frame-ancestors 'none'",
            )
        return response

    return guard


# --- routes --------------------------------------------------------------------------------------


async def _index(_: web.Request) -> web.StreamResponse:
    return web.FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-store"})


async def _healthz(_: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _when(value: str | None, default: int) -> int:
    """Unix seconds, or an ISO date/time (UTC unless it says otherwise)."""
    if not value:
        return default
    try:
        return int(float(value))
    except ValueError:
        pass
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp())


async def _bars(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    symbol = request.query.get("symbol", "").strip()
    interval = request.query.get("interval", "1m")
    if not symbol:
        return _json({"error": "symbol is required"}, 400)
    try:
        seconds = interval_seconds(interval)
        end = _when(request.query.get("to"), (int(time.time()) // seconds + 1) * seconds)
        start = _when(request.query.get("from"), end - WINDOW * seconds)
    except (BadInterval, ValueError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json(await console.bars_between(symbol, interval, start, end))


async def _stages(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    return _json(
        {
            "stages": console.stages,
            "clients": len(console.clients),
            "bar_updates": console.sent,
            "slow_clients_dropped": console.dropped_clients,
        }
    )


async def _prices(request: web.Request) -> web.StreamResponse:
    book = request.app[CONSOLE].book
    prices = [
        {"symbol": symbol, "price": price, "time_ms": at_ms}
        for symbol, (price, at_ms) in sorted(book.prices.items())
    ]
    return _json({"prices": prices})


async def _query(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if console.history is None:
        return _json({"error": "no ClickHouse configured"}, 503)
    try:
        body = await request.json(loads=orjson.loads)
        sql = str(body["sql"])
    except (ValueError, KeyError, TypeError):
        return _json({"error": 'POST a JSON body {"sql": "SELECT ..."}'}, 400)
    if not sql.strip() or len(sql) > MAX_SQL:
        return _json({"error": f"the SQL must be 1 to {MAX_SQL} characters"}, 400)
    history = console.history
    try:
        columns, rows, cut = await asyncio.get_running_loop().run_in_executor(None, history.query, sql)
    except HistoryUnavailable as exc:
        return _json({"error": str(exc)}, 503)
    except Exception as exc:  # ClickHouse's refusal (readonly, syntax, unknown table): its own words
        return _json({"error": f"{type(exc).__name__}: {str(exc)[:2000]}"}, 400)
    return _json({"columns": columns, "rows": rows, "truncated": cut})


async def _ws(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
    await ws.prepare(request)
    client = Client(ws)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                command = orjson.loads(message.data)
                op = command.get("op")
                if op == "subscribe":
                    symbols = [str(s).strip() for s in command.get("symbols", []) if str(s).strip()]
                    await console.subscribe(client, symbols, str(command.get("interval", "1m")))
                elif op == "unsubscribe":
                    console.clients.discard(client)
                    client.symbols = frozenset()
                    await ws.send_bytes(orjson.dumps({"type": "unsubscribed"}))
                else:
                    raise ValueError(f"unknown op {op!r}: subscribe or unsubscribe")
            except (ValueError, AttributeError, BadInterval) as exc:
                await ws.send_bytes(orjson.dumps({"type": "error", "error": str(exc)}))
    finally:
        console.clients.discard(client)
    return ws
