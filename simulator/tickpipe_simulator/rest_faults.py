"""REST fault injection: rate limits (429 with Retry-After), plans without a dataset (403), slow
answers and pages that fail validation, armed with `POST /_sim/rest_fault` or `--rest-fault`.

    {"status": 429, "count": 20, "retry_after": 1}          the next 20 REST requests: 429
    {"status": 403, "path_prefix": "/v3/quotes", "count": -1} quotes are not in this plan, ever
    {"delay_ms": 300, "count": 5}                           the next 5 answers come 300 ms late
    {"corrupt": true, "path_prefix": "/v3/trades"}          the next trades page has a bad row

A fault matches requests whose path starts with `path_prefix`; `count` -1 means forever. Faults
are checked after the API key, in the order armed; the first matching one is used.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tickpipe_simulator.faults import FaultError

_MESSAGES = {
    429: "You've exceeded the maximum requests per minute, please wait or upgrade your subscription "
    "to continue. https://polygon.io/pricing",
    403: "You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing",
    500: "Internal server error",
    503: "Service unavailable",
}


class RestFault(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal[403, 429, 500, 503] | None = None
    count: int = Field(1, ge=-1, description="requests it applies to; -1 = forever")
    retry_after: int = Field(1, ge=0, le=3600, description="seconds, sent with 429 and 503")
    path_prefix: str = Field("/", min_length=1)
    delay_ms: int = Field(0, ge=0, le=60_000)
    corrupt: bool = False


def parse_rest_fault(raw: bytes | str) -> RestFault:
    try:
        return RestFault.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise FaultError(f"bad REST fault: {exc}") from None


@dataclass
class _Armed:
    fault: RestFault
    remaining: int  # -1 = forever


class RestFaults:
    def __init__(self) -> None:
        self._armed: list[_Armed] = []
        self.served: dict[str, int] = {}  # status -> faulted answers sent

    def arm(self, fault: RestFault) -> None:
        self._armed.append(_Armed(fault, fault.count))

    def _take(self, path: str, want_corrupt: bool) -> RestFault | None:
        for entry in self._armed:
            fault = entry.fault
            if not path.startswith(fault.path_prefix) or fault.corrupt != want_corrupt:
                continue
            if entry.remaining > 0:
                entry.remaining -= 1
            if entry.remaining == 0:
                self._armed.remove(entry)
            return fault
        return None

    async def answer(self, path: str) -> web.Response | None:
        """A faulted answer for this request, or None to answer normally (after any delay)."""
        fault = self._take(path, want_corrupt=False)
        if fault is None:
            return None
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)  # the injected latency itself
        if fault.status is None:
            return None
        key = str(fault.status)
        self.served[key] = self.served.get(key, 0) + 1
        status = "NOT_AUTHORIZED" if fault.status == 403 else "ERROR"
        body = {"status": status, "request_id": secrets.token_hex(16), "error": _MESSAGES[fault.status]}
        if fault.status == 403:
            body["message"] = body.pop("error")
        headers = {"Retry-After": str(fault.retry_after)} if fault.status in (429, 503) else {}
        return web.Response(
            body=orjson.dumps(body), status=fault.status, content_type="application/json", headers=headers
        )

    def corrupt(self, path: str) -> bool:
        """True once per armed `corrupt` fault matching `path`: the page gets one invalid row."""
        return self._take(path, want_corrupt=True) is not None
