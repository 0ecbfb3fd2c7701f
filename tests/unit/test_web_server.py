"""The console's HTTP side in-process: who may look, conflation, subscription filtering, REST bars.

Events go into the console directly (its feed reader is the integration tests' business); the
websocket clients are real aiohttp clients over loopback.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, CookieJar, WSServerHandshakeError
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from tickpipe_web.bars import Bar
from tickpipe_web.console import CONFLATE, Console
from tickpipe_web.history import HistoryUnavailable
from tickpipe_web.server import build_app
from tickpipe_web.settings import WebSettings

TOKEN = "s3cret-token-0123456789"


def agg(symbol: str, second: int, price: float, volume: float, offset_ms: int = 0) -> dict[str, Any]:
    """An `A` aggregate; a re-sent one (same symbol and start) replaces the earlier, so sub-bars of
    one second that must add up get distinct `offset_ms`."""
    return {
        "ev": "A", "symbol": symbol, "start_ms": second * 1000 + offset_ms, "end_ms": second * 1000 + 1000,
        "open": price, "high": price, "low": price, "close": price, "volume": volume,
        "received_ns": time.time_ns(),
    }  # fmt: skip


def serve(
    check: Callable[[Console, TestServer, ClientSession], Awaitable[None]],
    token: str | None = None,
    loopback: bool = True,
) -> None:
    async def main() -> None:
        console = Console(history=None)
        server = TestServer(build_app(console, token, loopback), host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:  # IP-host cookies
                await check(console, server, session)
        finally:
            await server.close()

    asyncio.run(main())


async def next_message(ws: ClientWebSocketResponse, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = orjson.loads((await ws.receive(timeout=max(0.01, deadline - time.monotonic()))).data)
        if message["type"] == kind:
            return dict(message)


async def drain(ws: ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except TimeoutError:
            break
        out.append(orjson.loads(message.data))
    return out


def test_updates_are_conflated_per_bar_and_filtered_by_subscription() -> None:
    now = int(time.time())

    async def check(console: Console, server: TestServer, session: ClientSession) -> None:
        aapl = await session.ws_connect(server.make_url("/ws"))
        msft = await session.ws_connect(server.make_url("/ws"))
        minutes = await session.ws_connect(server.make_url("/ws"))
        await aapl.send_json({"op": "subscribe", "symbols": ["AAPL"], "interval": "1s"})
        await msft.send_json({"op": "subscribe", "symbols": ["MSFT"], "interval": "1s"})
        await minutes.send_json({"op": "subscribe", "symbols": ["AAPL", "MSFT"], "interval": "1m"})
        for ws in (aapl, msft, minutes):
            await next_message(ws, "subscribed")
        # 200 events for one AAPL second over ~1 s, and one MSFT second
        volume = 0.0
        for i in range(200):
            console.apply([agg("AAPL", now, 100 + i / 100, 1.0 + i, offset_ms=i * 5)])
            volume += 1.0 + i
            await asyncio.sleep(0.005)
        console.apply([agg("MSFT", now, 50.0, 3.0)])
        got = {name: await drain(ws, 0.8) for name, ws in (("aapl", aapl), ("msft", msft), ("1m", minutes))}
        bars = {name: [(m["sent_ms"], b) for m in msgs if m["type"] == "bars" for b in m["bars"]]
                for name, msgs in got.items()}  # fmt: skip
        assert {b["symbol"] for _, b in bars["aapl"]} == {"AAPL"}
        assert {b["symbol"] for _, b in bars["msft"]} == {"MSFT"}
        assert {(b["symbol"], b["interval"]) for _, b in bars["1m"]} == {("AAPL", "1m"), ("MSFT", "1m")}
        aapl_bars = [(at, b) for at, b in bars["aapl"] if b["time"] == now]
        assert 2 <= len(aapl_bars) <= 8, f"{len(aapl_bars)} updates of one bar for 200 events in ~1.2 s"
        sends = [at for at, _ in aapl_bars]
        assert all(b - a >= CONFLATE * 1000 - 1 for a, b in itertools.pairwise(sends)), sends
        last = aapl_bars[-1][1]  # the quiet period ends with the bar's final values
        assert (last["open"], last["close"], last["volume"]) == (100.0, 101.99, volume)
        assert last["high"] == 101.99
        assert last["low"] == 100.0
        await aapl.send_json({"op": "unsubscribe"})
        await next_message(aapl, "unsubscribed")
        console.apply([agg("AAPL", now + 1, 1.0, 1.0)])
        assert not [m for m in await drain(aapl, 0.5) if m["type"] == "bars"]
        await aapl.send_json({"op": "subscribe", "symbols": ["AAPL"], "interval": "2m"})
        assert "1s, 1m, 5m, 1h" in (await next_message(aapl, "error"))["error"]

    serve(check)


def test_a_subscription_starts_with_a_snapshot_and_rest_returns_the_same_bars() -> None:
    start = int(time.time()) // 60 * 60 - 600

    async def check(console: Console, server: TestServer, session: ClientSession) -> None:
        for second in (*range(start, start + 120), *range(start + 300, start + 360)):
            console.apply([agg("AAPL", second, 10.0 + (second % 7), 2.0)])
        ws = await session.ws_connect(server.make_url("/ws"))
        await ws.send_json({"op": "subscribe", "symbols": ["AAPL"], "interval": "1m"})
        snap = await next_message(ws, "snapshot")
        assert [b["time"] for b in snap["bars"]] == [start, start + 60, start + 300]
        assert snap["gaps"] == [[start + 120, start + 300]]
        assert [b["volume"] for b in snap["bars"]] == [120.0, 120.0, 120.0]
        response = await session.get(server.make_url(f"/api/bars?symbol=AAPL&interval=1m&from={start}"))
        body = await response.json()
        assert body["bars"] == snap["bars"]
        assert body["gaps"] == snap["gaps"]
        assert (await session.get(server.make_url("/api/bars?symbol=AAPL&interval=3m"))).status == 400
        prices = (await (await session.get(server.make_url("/api/prices"))).json())["prices"]
        assert [p["symbol"] for p in prices] == ["AAPL"]

    serve(check)


def test_a_token_is_required_and_compared_as_bytes_in_constant_time() -> None:
    async def check(console: Console, server: TestServer, session: ClientSession) -> None:
        assert (await session.get(server.make_url("/api/prices"))).status == 401
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
        assert (await session.get(server.make_url("/api/prices"), headers=wrong)).status == 401
        assert (
            await session.get(server.make_url("/api/prices"), headers={"Authorization": "Bearer é"})
        ).status == 401
        ok = {"Authorization": f"Bearer {TOKEN}"}
        assert (await session.get(server.make_url("/api/prices"), headers=ok)).status == 200
        with pytest.raises(WSServerHandshakeError):
            await session.ws_connect(server.make_url("/ws"))
        page = await session.get(server.make_url(f"/?token={TOKEN}"))  # sets the cookie
        assert page.status == 200
        assert "HttpOnly" in page.headers["Set-Cookie"]
        assert (await session.get(server.make_url("/api/prices"))).status == 200  # by cookie
        ws = await session.ws_connect(server.make_url("/ws"))
        await ws.close()

    serve(check, token=TOKEN, loopback=False)


def test_loopback_answers_loopback_names_only_and_refuses_other_origins() -> None:
    async def check(console: Console, server: TestServer, session: ClientSession) -> None:
        rebound = {"Host": f"evil.example:{server.port}"}
        assert (await session.get(server.make_url("/api/prices"), headers=rebound)).status == 403
        other = {"Origin": "http://evil.example"}
        with pytest.raises(WSServerHandshakeError):
            await session.ws_connect(server.make_url("/ws"), headers=other)
        refused = await session.post(server.make_url("/api/query"), json={"sql": "SELECT 1"}, headers=other)
        assert refused.status == 403
        same = {"Origin": f"http://127.0.0.1:{server.port}"}
        ws = await session.ws_connect(server.make_url("/ws"), headers=same)
        await ws.close()
        page = await session.get(server.make_url("/"))
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert "lightweight-charts.standalone.production.js" in await page.text()
        script = await session.get(server.make_url("/static/lightweight-charts.standalone.production.js"))
        assert script.status == 200
        assert b"Lightweight Charts" in await script.read()
        for method in ("PUT", "DELETE", "PATCH"):
            assert (await session.request(method, server.make_url("/api/query"))).status == 405

    serve(check)


def test_listening_beyond_loopback_needs_a_long_token() -> None:
    assert WebSettings().web_host == "127.0.0.1"
    with pytest.raises(ValidationError, match="required when listening beyond loopback"):
        WebSettings(web_host="0.0.0.0")
    with pytest.raises(ValidationError, match="at least 16"):
        WebSettings(web_host="0.0.0.0", web_token="short")
    assert WebSettings(web_host="0.0.0.0", web_token=TOKEN).web_token is not None
    assert WebSettings(web_host="::1").web_host == "::1"


class FakeHistory:
    """ClickHouse's answers for the seeding tests: fixed bars, or unavailable."""

    def __init__(self, bars: list[Bar] | None):
        self.answer = bars
        self.asked = 0

    def bars(self, symbol: str, interval: str, start: int, end: int) -> list[Bar]:
        self.asked += 1
        time.sleep(0.05)  # a query takes a moment: concurrent subscribers must share it
        if self.answer is None:
            raise HistoryUnavailable("no running sink holds the chDB folder")
        return [bar for bar in self.answer if start <= bar.time < end]


def test_history_seeds_the_window_once_and_says_when_it_is_unavailable() -> None:
    minute = int(time.time()) // 60 * 60
    history = FakeHistory([Bar(minute - 60 * i, 5, 6, 4, 5.5, 10) for i in range(1, 4)])

    async def check(console: Console, server: TestServer, session: ClientSession) -> None:
        console.history = history  # type: ignore[assignment]
        console.apply([agg("AAPL", minute + 1, 7.0, 2.0)])
        clients = [await session.ws_connect(server.make_url("/ws")) for _ in range(3)]
        for ws in clients:
            await ws.send_json({"op": "subscribe", "symbols": ["AAPL"], "interval": "1m"})
        snaps = [await next_message(ws, "snapshot") for ws in clients]
        assert history.asked == 1
        for snap in snaps:
            assert [(b["time"], b["volume"]) for b in snap["bars"]] == [
                (minute - 180, 10), (minute - 120, 10), (minute - 60, 10), (minute, 2.0)
            ]  # fmt: skip
            assert snap["history"] == "ok"
        history.answer = None
        ws = await session.ws_connect(server.make_url("/ws"))
        await ws.send_json({"op": "subscribe", "symbols": ["MSFT"], "interval": "5m"})
        snap = await next_message(ws, "snapshot")
        assert snap["history"] == "unavailable: no running sink holds the chDB folder"
        body = await (await session.get(server.make_url("/api/bars?symbol=AAPL&interval=1m"))).json()
        assert body["history"].startswith("unavailable")
        assert [b["time"] for b in body["bars"]] == [minute - 180, minute - 120, minute - 60, minute]

    serve(check)


def test_a_rejected_token_never_appears_in_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tickpipe_cli.cli import main

    assert main(["web", "--web-host", "0.0.0.0", "--web-token", "tooshort-secret"]) == 2
    err = capsys.readouterr().err
    assert "WEB_TOKEN: Value error, must be at least 16 characters" in err
    assert "tooshort-secret" not in err
    assert main(["web", "--web-host", "0.0.0.0"]) == 2
    assert "required when listening beyond loopback (WEB_HOST=0.0.0.0)" in capsys.readouterr().err
