"""The v3 REST endpoints, with Polygon's shapes and `next_url` pagination (a cursor, no key):

    GET /v3/trades/{ticker}?timestamp.gte=NS&timestamp.lt=NS&order=asc&limit=50000
    GET /v3/quotes/{ticker}?timestamp=YYYY-MM-DD&order=desc
    GET /v3/reference/tickers?date=YYYY-MM-DD&active=false&limit=1000
    GET /v3/reference/conditions?asset_class=stocks&data_type=trade

Trade and quote times are nanoseconds (`sip_timestamp`); a `timestamp` bound is nanoseconds or a
YYYY-MM-DD day (UTC). The cursor holds the query and the key of the last row served (time and
sequence number, or ticker), so a page never repeats or skips a row while history grows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

import orjson
from aiohttp import web

from tickpipe_simulator.reference import CONDITIONS, TickerVersion, tickers_on
from tickpipe_simulator.rest import RestError, json_response
from tickpipe_simulator.tick_history import TickHistory

NS_PER_DAY = 86_400 * 10**9
TICK_LIMIT = (1000, 50_000)  # (default, max), as Polygon
TICKER_LIMIT = (100, 1000)
CONDITION_LIMIT = (10, 1000)
BAD_ROW = {"price": "not-a-price"}  # what a corrupt page's first row gets (fault injection)


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise RestError(400, "Invalid cursor: pass next_url back unchanged") from None
    if not isinstance(state, dict):
        raise RestError(400, "Invalid cursor: pass next_url back unchanged")
    return state


def _limit(request: web.Request, bounds: tuple[int, int]) -> int:
    raw = request.query.get("limit", str(bounds[0]))
    if not raw.isdigit() or not 1 <= int(raw) <= bounds[1]:
        raise RestError(400, f"Invalid limit {raw!r}: must be an integer from 1 to {bounds[1]}")
    return int(raw)


def _order(request: web.Request, default: str) -> str:
    order = request.query.get("order", default)
    if order not in ("asc", "desc"):
        raise RestError(400, f"Invalid order {order!r}: must be 'asc' or 'desc'")
    return order


def _ns(value: str, name: str, end: bool) -> int:
    if value.isdigit():
        return int(value)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise RestError(400, f"Could not parse '{name}': use nanoseconds or YYYY-MM-DD") from None
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9
    return start + NS_PER_DAY - 1 if end else start


def time_bounds(query: Any) -> tuple[int, int]:
    """[lo, hi] in nanoseconds, inclusive, from `timestamp` and `timestamp.gte/gt/lte/lt`."""
    lo, hi = 0, 2**63 - 1
    if "timestamp" in query:
        lo, hi = _ns(query["timestamp"], "timestamp", False), _ns(query["timestamp"], "timestamp", True)
    if "timestamp.gte" in query:
        lo = max(lo, _ns(query["timestamp.gte"], "timestamp.gte", False))
    if "timestamp.gt" in query:
        lo = max(lo, _ns(query["timestamp.gt"], "timestamp.gt", True) + 1)
    if "timestamp.lte" in query:
        hi = min(hi, _ns(query["timestamp.lte"], "timestamp.lte", True))
    if "timestamp.lt" in query:
        hi = min(hi, _ns(query["timestamp.lt"], "timestamp.lt", False) - 1)
    return lo, hi


def _body(request: web.Request, results: list[dict[str, Any]], state: dict[str, Any] | None) -> web.Response:
    body: dict[str, Any] = {"results": results, "status": "OK", "request_id": secrets.token_hex(16)}
    if state is not None:
        body["next_url"] = str(request.url.with_query({"cursor": _encode(state)}))
    return json_response(body)


def ticks(
    request: web.Request, history: TickHistory, kind: str, corrupt: Callable[[str], bool]
) -> web.Response:
    """`/v3/trades/{ticker}` (kind "trades") and `/v3/quotes/{ticker}` (kind "quotes")."""
    ticker = request.match_info["ticker"]
    cursor = request.query.get("cursor")
    if cursor:
        state = _decode(cursor)
        try:
            lo, hi, order, limit = int(state["lo"]), int(state["hi"]), str(state["o"]), int(state["l"])
            after = (int(state["k"][0]), int(state["k"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise RestError(400, "Invalid cursor: pass next_url back unchanged") from None
    else:
        sort = request.query.get("sort", "timestamp")
        if sort != "timestamp":
            raise RestError(400, f"Invalid sort {sort!r}: only 'timestamp'")
        lo, hi = time_bounds(request.query)
        order, limit, after = _order(request, "desc"), _limit(request, TICK_LIMIT), None
    fetch = history.trades if kind == "trades" else history.quotes
    if order == "asc":
        rows: Iterable[dict[str, Any]] = fetch(ticker, lo, hi, after)
    else:
        end = hi if after is None else min(hi, after[0])
        rows = reversed(list(fetch(ticker, lo, end)))
        if after is not None:
            rows = (r for r in rows if (r["sip_timestamp"], r["sequence_number"]) < after)
    page = list(islice(rows, limit + 1))
    more = len(page) > limit
    page = page[:limit]
    if page and corrupt(request.path):
        page[0] = {**page[0], **BAD_ROW}
    following: dict[str, Any] | None = None
    if more:
        last = page[-1]
        key = [last["sip_timestamp"], last["sequence_number"]]
        following = {"lo": lo, "hi": hi, "o": order, "l": limit, "k": key}
    return _body(request, page, following)


def tickers(request: web.Request, versions: list[TickerVersion]) -> web.Response:
    """`/v3/reference/tickers`: filters ticker, market, type, active (default true), date."""
    cursor = request.query.get("cursor")
    query: dict[str, str] = _decode(cursor)["q"] if cursor else dict(request.query)
    after = _decode(cursor).get("k") if cursor else None
    limit = _limit_of(query, TICKER_LIMIT)
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise RestError(400, f"Invalid order {order!r}: must be 'asc' or 'desc'")
    as_of = _ns(query["date"], "date", True) // 10**6 if "date" in query else 2**62
    active = query.get("active", "true")
    if active not in ("true", "false"):
        raise RestError(400, f"Invalid active {active!r}: must be 'true' or 'false'")
    rows = [
        row
        for row in tickers_on(versions, as_of)
        if str(row["active"]).lower() == active
        and all(row.get(name) == query[name] for name in ("ticker", "market", "type") if name in query)
    ]
    if order == "desc":
        rows.reverse()
    if after is not None:
        rows = [r for r in rows if (r["ticker"] > after if order == "asc" else r["ticker"] < after)]
    page = rows[:limit]
    state = {"q": query, "k": page[-1]["ticker"]} if len(rows) > limit else None
    return _body(request, page, state)


def conditions(request: web.Request) -> web.Response:
    """`/v3/reference/conditions`: filters asset_class, data_type, id; offset cursor (static list)."""
    cursor = request.query.get("cursor")
    query: dict[str, str] = _decode(cursor)["q"] if cursor else dict(request.query)
    offset = int(_decode(cursor).get("o", 0)) if cursor else 0
    limit = _limit_of(query, CONDITION_LIMIT)
    rows = [
        c
        for c in CONDITIONS
        if c["asset_class"] == query.get("asset_class", c["asset_class"])
        and (query.get("data_type") is None or query["data_type"] in c["data_types"])
        and (query.get("id") is None or str(c["id"]) == query["id"])
    ]
    page = rows[offset : offset + limit]
    state = {"q": query, "o": offset + limit} if offset + limit < len(rows) else None
    return _body(request, page, state)


def _limit_of(query: dict[str, str], bounds: tuple[int, int]) -> int:
    raw = str(query.get("limit", bounds[0]))
    if not raw.isdigit() or not 1 <= int(raw) <= bounds[1]:
        raise RestError(400, f"Invalid limit {raw!r}: must be an integer from 1 to {bounds[1]}")
    return int(raw)
