"""REST pages through the official `polygon-api-client` RESTClient, with status-aware retries.

The RESTClient builds each first request (path, parameters, the key in the Authorization header)
with its own `list_*`/`get_*` methods in raw mode, and follows `next_url` the way its paginator
does (the path and cursor of `next_url`, no key in the URL). It raises a bare `BadResponse` for
any status but 200, so its connection pool is replaced by one without urllib3 retries that
remembers each thread's last response: that gives the status and `Retry-After` to act on here.

- 401: the key is missing or rejected: `KeyRejected` (the run stops; the key is never shown).
- 403: the plan does not include the dataset: `NotEntitled` (that dataset stops, others go on).
- 429, 500, 502, 503, 504: wait `Retry-After` (or 1, 2, 4 ... 30 s), paused for every worker, and
  ask again, until `max_wait_s` of waiting for one request; then `GaveUp`.
- other 4xx: `RequestFailed` with the server's message (the chunk fails, the run goes on).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3
from polygon import RESTClient
from polygon.exceptions import BadResponse

from tickpipe_history.rate_limit import RateLimiter

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class RestFailure(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class KeyRejected(RestFailure):
    """401: no key or an unknown one."""


class NotEntitled(RestFailure):
    """403: the key's plan does not include this data."""


class RequestFailed(RestFailure):
    """Another 4xx: this request cannot succeed as asked."""


class GaveUp(RestFailure):
    """Still 429/5xx or unreachable after waiting `max_wait_s`."""


class _RememberingPool:
    """A urllib3 PoolManager that keeps each thread's last response (status, headers)."""

    def __init__(self, pool: urllib3.PoolManager):
        self.pool = pool
        self.local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.local.last = None
        response = self.pool.request(*args, **kwargs)
        self.local.last = response
        return response

    def last(self) -> Any:
        return getattr(self.local, "last", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class PolygonPages:
    """Raw JSON pages (bytes) from Polygon's REST API, one request at a time per calling thread."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        limiter: RateLimiter,
        max_wait_s: float = 900.0,
        pool_size: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rest = RESTClient(api_key=api_key, base=base_url.rstrip("/"), retries=0, pagination=False)
        self.pool = _RememberingPool(
            urllib3.PoolManager(
                num_pools=4,
                maxsize=pool_size,
                headers=self.rest.headers,
                retries=False,
                timeout=urllib3.Timeout(connect=10.0, read=60.0),
            )
        )
        self.rest.client = self.pool
        self.limiter = limiter
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.requests = 0
        self.fetch_s = 0.0  # wall time inside requests, summed over threads
        self.retried: dict[int, int] = {}  # status (0 = network) -> retries

    def first(self, call: Callable[[RESTClient], Any]) -> bytes:
        """The first page of a listing: `call(rest)` is a RESTClient method in raw mode."""
        return self._get(lambda: call(self.rest))

    def follow(self, next_url: str) -> bytes:
        """The page a `next_url` points to (its path and cursor; the key travels in the header)."""
        parts = urlsplit(next_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self._get(lambda: self.rest._get(path=path, params={}, raw=True))

    def _get(self, send: Callable[[], Any]) -> bytes:
        waited = 0.0
        attempt = 0
        while True:
            self.limiter.acquire()
            self.requests += 1
            began = time.monotonic()
            try:
                response = send()
                self.fetch_s += time.monotonic() - began
                return bytes(response.data)
            except BadResponse as exc:
                answer = self.pool.last()
                status = int(answer.status) if answer is not None else 0
                message = _message(str(exc))
                if status == 401:
                    raise KeyRejected(401, message) from None
                if status == 403:
                    raise NotEntitled(403, message) from None
                if status not in RETRY_STATUSES:
                    raise RequestFailed(status, message) from None
                delay = _retry_after(answer) if answer is not None else None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                status, message, delay = 0, f"{type(exc).__name__}: {exc}", None
            if delay is None:
                delay = min(MAX_BACKOFF_S, 2.0**attempt)
            if waited + delay > self.max_wait_s:
                raise GaveUp(status, f"gave up after waiting {waited:.0f} s: {status} {message}")
            self.retried[status] = self.retried.get(status, 0) + 1
            log.info("REST %s, retrying in %.1f s", status or "unreachable", delay)
            self.limiter.pause(delay)
            waited += delay
            attempt += 1


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response.headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def _message(body: str) -> str:
    """The server's error text from a Polygon error body, short (never contains the key)."""
    import orjson

    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200]
    if isinstance(decoded, dict):
        return str(decoded.get("error") or decoded.get("message") or decoded.get("status") or "")[:200]
    return body[:200]
