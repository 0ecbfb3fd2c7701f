"""The REST endpoints, answering as Polygon does (shapes, errors and `next_url` pagination).

    GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}?sort=asc&limit=5000
    GET /v2/aggs/grouped/locale/us/market/stocks/{date}

Auth: `Authorization: Bearer KEY` (what the official RESTClient sends) or `?apiKey=KEY`.
`from`/`to` are YYYY-MM-DD (whole UTC days) or Unix milliseconds. Data exists only for the
seconds the market has simulated (and still remembers); outside them a query is empty, as
Polygon answers a day without trading.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from typing import Any

import orjson
from aiohttp import web

from tickpipe_simulator.bars import SPAN_MS, BarHistory

DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000


class RestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    request_id = secrets.token_hex(16)
    if status == 404:
        return json_response({"status": "NOT_FOUND", "request_id": request_id, "message": message}, status)
    return json_response({"status": "ERROR", "request_id": request_id, "error": message}, status)


def check_key(request: web.Request, api_keys: frozenset[str]) -> None:
    header = request.headers.get("Authorization", "")
    key = (
        header[len("Bearer ") :].strip() if header.startswith("Bearer ") else request.query.get("apiKey", "")
    )
    if not key:
        raise RestError(401, "API Key was not provided")
    if api_keys and key not in api_keys:
        raise RestError(401, "Unknown API Key")


def parse_time(value: str, name: str, end_of_day: bool) -> int:
    if value.isdigit():
        return int(value)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise RestError(
            400, f"Could not parse the time parameter: '{name}'. Use YYYY-MM-DD or Unix MS Timestamps"
        ) from None
    start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return start + SPAN_MS["day"] - 1 if end_of_day else start


def _page(request: web.Request) -> tuple[int, int, str]:
    """(offset, limit, sort) from `cursor` or from `limit` and `sort`."""
    cursor = request.query.get("cursor")
    if cursor:
        try:
            state = orjson.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
            return int(state["o"]), int(state["l"]), str(state["s"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            raise RestError(400, "Invalid cursor: pass next_url back unchanged") from None
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise RestError(400, f"Invalid limit {raw_limit!r}: must be an integer from 1 to {MAX_LIMIT}")
    sort = request.query.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise RestError(400, f"Invalid sort {sort!r}: must be 'asc' or 'desc'")
    return 0, int(raw_limit), sort


def _cursor(offset: int, limit: int, sort: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "l": limit, "s": sort})).decode().rstrip("=")


def range_aggs(request: web.Request, history: BarHistory, api_keys: frozenset[str]) -> web.Response:
    check_key(request, api_keys)
    info = request.match_info
    ticker, timespan = info["ticker"], info["timespan"]
    if not info["multiplier"].isdigit() or int(info["multiplier"]) < 1:
        raise RestError(400, f"Invalid multiplier {info['multiplier']!r}: must be a positive integer")
    if timespan not in SPAN_MS:
        raise RestError(400, f"Invalid timespan {timespan!r}: one of {', '.join(SPAN_MS)}")
    from_ms = parse_time(info["from"], "from", end_of_day=False)
    to_ms = parse_time(info["to"], "to", end_of_day=True)
    if to_ms < from_ms:
        raise RestError(400, "The 'to' parameter must be on or after 'from'")
    offset, limit, sort = _page(request)
    bars = history.bars(ticker, int(info["multiplier"]) * SPAN_MS[timespan], from_ms, to_ms)
    if sort == "desc":
        bars.reverse()
    page = bars[offset : offset + limit]
    body: dict[str, Any] = {
        "ticker": ticker,
        "queryCount": len(bars),
        "resultsCount": len(page),
        "adjusted": True,
        "results": page,
        "status": "OK",
        "request_id": secrets.token_hex(16),
        "count": len(page),
    }
    if not page:
        del body["results"]
    if offset + limit < len(bars):
        next_url = request.url.with_query({"cursor": _cursor(offset + limit, limit, sort)})
        body["next_url"] = str(next_url)
    return json_response(body)


def grouped_daily(request: web.Request, history: BarHistory, api_keys: frozenset[str]) -> web.Response:
    check_key(request, api_keys)
    day_start = parse_time(request.match_info["date"], "date", end_of_day=False)
    if not request.match_info["date"].count("-") == 2:
        raise RestError(400, "Could not parse the date parameter: use YYYY-MM-DD")
    results = history.grouped(day_start)
    body: dict[str, Any] = {
        "queryCount": len(results),
        "resultsCount": len(results),
        "adjusted": True,
        "results": results,
        "status": "OK",
        "request_id": secrets.token_hex(16),
        "count": len(results),
    }
    return json_response(body)
