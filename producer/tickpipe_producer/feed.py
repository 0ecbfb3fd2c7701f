"""The websocket side: the official Polygon client, reconnects, status messages, live subscriptions.

The official `WebSocketClient` (raw mode) delivers each frame to `on_frame`, which only timestamps
it and puts it in the read-ahead queue: the socket is never blocked on Kafka. tickpipe owns the
reconnect policy (exponential backoff with jitter, indefinitely by default) so that every reconnect
is counted and every gap is reported; the client resubscribes the current set on each new session.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import polygon.websocket as polygon_websocket
from polygon import WebSocketClient
from polygon.exceptions import AuthError
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tickpipe_producer.frame_queue import FrameQueue
from tickpipe_producer.metrics import ProducerMetrics

log = logging.getLogger(__name__)

EXIT_KEY_REJECTED = 3
EXIT_GAVE_UP = 1
STABLE_SESSION_SECONDS = 10.0  # a shorter session counts as a failed attempt (e.g. evicted at once)


class _FailFastConnect(websockets_connect):
    """Let connection failures reach tickpipe's reconnect loop instead of websockets' own retry.

    The official client retries failed connects forever inside websockets with a fixed policy we
    cannot observe; with this, one policy (ours) covers refused connects and dropped sessions alike.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process_exception = lambda exc: exc


polygon_websocket.connect = _FailFastConnect  # the client looks `connect` up in its module


@dataclass
class Backoff:
    """Exponential backoff with equal jitter: delay in [cap/2, cap], cap doubling up to `maximum`."""

    initial: float
    maximum: float
    attempt: int = 0

    def next_delay(self) -> float:
        cap = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return float(cap / 2 + random.uniform(0, cap / 2))

    def reset(self) -> None:
        self.attempt = 0


class Feed:
    """One logical feed connection: connect, read, reconnect, until `stop` is set."""

    def __init__(
        self,
        *,
        api_key: str,
        feed: str,
        market: str,
        secure: bool,
        queue: FrameQueue,
        metrics: ProducerMetrics,
        topics: frozenset[str],
        backoff: Backoff,
        max_reconnects: int = 0,
        clock_ns: Callable[[], int] = time.time_ns,
        gap_started: float | None = None,
        on_gap: Callable[[float, float, list[str], str], None] | None = None,
    ):
        self.queue = queue
        self.metrics = metrics
        self.backoff = backoff
        self.max_reconnects = max_reconnects
        self.clock_ns = clock_ns
        self.topics = topics
        self.client = WebSocketClient(
            api_key=api_key,
            feed=feed,
            market=market,
            secure=secure,
            raw=True,
            max_reconnects=0,
            subscriptions=sorted(topics),
            custom_json=orjson_json,
        )
        self._session_frames = 0
        # A gap is open until the first frame of the next session: from start-up when the previous
        # producer's last event is known (a restart), and from every disconnection.
        self._gap_started: float | None = gap_started
        self._gap_reason = "producer restart"
        self.on_gap = on_gap  # (from, to, topics, why), e.g. GapPublisher.publish
        self._stopping = False
        self.connected = False

    # --- subscriptions (called on the event loop) -------------------------------------------

    def apply(self, subscribe: list[str], unsubscribe: list[str], topics: frozenset[str]) -> None:
        """Change the live subscriptions; the client sends them on the open session, no reconnect."""
        if unsubscribe:
            self.client.unsubscribe(*unsubscribe)
        if subscribe:
            self.client.subscribe(*subscribe)
        self.topics = topics
        self.metrics.subscriptions.set(len(topics))

    # --- the session loop --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> int:
        """Returns an exit code: 0 after `stop`, 3 if the key is rejected, 1 after too many reconnects."""
        self.metrics.subscriptions.set(len(self.topics))
        failures = 0
        while not stop.is_set():
            self._session_frames = 0
            started = time.monotonic()
            session = asyncio.create_task(self.client.connect(self._on_frame))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                await self._close(session)
                stopper.cancel()
                return 0
            stopper.cancel()
            self.connected = False
            self.metrics.connected.set(0)
            reason = self._session_outcome(session)
            if isinstance(reason, AuthError):
                log.error("Polygon rejected the API key (auth_failed); check POLYGON_API_KEY")
                return EXIT_KEY_REJECTED
            if self._gap_started is None:
                self._gap_started = time.time()
                self._gap_reason = str(reason)
            if time.monotonic() - started >= STABLE_SESSION_SECONDS:
                failures = 0  # a session that lasted was a success: start the backoff over
                self.backoff.reset()
            else:
                failures += 1
            if self.max_reconnects and failures > self.max_reconnects:
                log.error("giving up after reconnect attempts", extra={"fields": {"attempts": failures}})
                return EXIT_GAVE_UP
            delay = self.backoff.next_delay()
            self.metrics.reconnects.inc()
            log.warning(
                "websocket session ended; reconnecting",
                extra={"fields": {"reason": reason, "retry_in_s": round(delay, 2)}},
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                continue
        return 0

    def _session_outcome(self, session: asyncio.Task[None]) -> Any:
        error = session.exception()
        if error is None:
            return "server closed the connection normally"
        if isinstance(error, AuthError):
            return error
        if isinstance(error, ConnectionClosed):
            code = error.rcvd.code if error.rcvd else None
            return f"connection closed (code {code})"
        if isinstance(error, (OSError, TimeoutError, InvalidHandshake)):
            return f"cannot connect: {type(error).__name__}: {error}"
        log.error("unexpected error in the websocket session", exc_info=error)
        return f"{type(error).__name__}: {error}"

    async def _close(self, session: asyncio.Task[None]) -> None:
        self._stopping = True
        try:
            await asyncio.wait_for(self.client.close(), timeout=2)
        except Exception:  # already closed, or never opened
            log.debug("websocket close failed", exc_info=True)
        try:
            await asyncio.wait_for(session, timeout=3)
        except BaseException:  # the session may end with the close error; we are stopping anyway
            session.cancel()
        self.metrics.connected.set(0)

    # --- frames ------------------------------------------------------------------------------

    async def _on_frame(self, frame: str | bytes) -> None:
        """The client's callback: timestamp, note statuses, queue. Never waits on Kafka."""
        received_ns = self.clock_ns()
        if self._session_frames == 0:
            self._session_started()
        self._session_frames += 1
        if _mentions_status(frame):
            self._handle_statuses(frame)
        item = (received_ns, frame)
        if not self.queue.offer(item):
            self.metrics.queue_full.inc()
            log.warning(
                "read-ahead queue full; the reader waits for Kafka",
                extra={"fields": {"queued_bytes": self.queue.bytes}},
            )
            while not await asyncio.to_thread(self.queue.put, item, 1.0):
                if self._stopping:
                    return

    def _session_started(self) -> None:
        self.connected = True
        self.metrics.connected.set(1)
        if self._gap_started is not None:
            ended = time.time()
            seconds = ended - self._gap_started
            self.metrics.gaps.inc()
            self.metrics.gap_seconds.inc(seconds)
            log.warning(
                "websocket gap: events in this range were not received",
                extra={
                    "fields": {
                        "gap_from": _iso(self._gap_started),
                        "gap_to": _iso(ended),
                        "seconds": round(seconds, 3),
                        "topics": sorted(self.topics),
                    }
                },
            )
            if self.on_gap is not None:
                self.on_gap(self._gap_started, ended, sorted(self.topics), self._gap_reason)
            self._gap_started = None

    def _handle_statuses(self, frame: str | bytes) -> None:
        try:
            events = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return  # the publisher forwards it whole for the DLQ
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, dict) or event.get("ev") != "status":
                continue
            status, message = str(event.get("status", "")), str(event.get("message", ""))
            self.metrics.statuses.labels(status).inc()
            if status == "success":
                log.info("feed: %s", message)
            elif status == "max_connections":
                log.error(
                    "feed: max_connections: another connection with this API key evicted this one",
                    extra={"fields": {"message": message}},
                )
            elif status == "slow_consumer":
                log.error(
                    "feed: slow_consumer: the server is dropping this client for reading too slowly",
                    extra={"fields": {"message": message}},
                )
            else:
                log.warning("feed status", extra={"fields": {"status": status, "message": message}})


class _OrjsonModule:
    """`custom_json` for the client: orjson behind the `json` module's two functions."""

    @staticmethod
    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

    @staticmethod
    def loads(value: str | bytes) -> Any:
        return orjson.loads(value)


orjson_json = _OrjsonModule()


def _mentions_status(frame: str | bytes) -> bool:
    """Cheap pre-check: only frames containing a status message are parsed on the reader side."""
    return b'"status"' in frame if isinstance(frame, bytes) else '"status"' in frame


def _iso(unix_seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix_seconds))
        + f".{int(unix_seconds % 1 * 1000):03d}Z"
    )
