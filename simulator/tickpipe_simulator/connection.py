"""One client connection: its subscriptions, its bounded outbound queue, its writer and its counts.

The feed never blocks on a client. It offers frames; a writer task per connection sends them in
order. When a paced feed (real time, or N times faster) offers more than `max_buffer_bytes` that
the client has not taken yet, the client is a slow consumer: its backlog is dropped, it gets a
`slow_consumer` status and a close. An unpaced feed (speed 0) waits for room instead.

The counts in `snapshot()` are of frames the writer handed to the socket, never of frames merely
generated or queued, so tests can compare what arrived downstream with what was sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tickpipe_simulator.faults import MALFORMED_FRAMES, POLICY_CLOSE, Fault
from tickpipe_simulator.frames import Frame, status_frame
from tickpipe_simulator.topics import Selection

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass
class _Armed:
    fault: Fault
    at_frame: int  # data frames written when the fault was armed


class Connection:
    def __init__(
        self,
        conn_id: int,
        market: str,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        max_buffer_bytes: int,
        paced: bool,
    ):
        self.id = conn_id
        self.market = market
        self.ws = ws
        self.transport = transport
        self.max_buffer_bytes = max_buffer_bytes
        self.paced = paced
        self.key_id: str | None = None  # a fingerprint of the API key, never the key
        self.authenticated = False
        self.topics: set[str] = set()  # acknowledged; in force from the next second
        self.selection: Selection | None = None  # in force now
        self.connected_at = time.time()
        self.authenticated_at: float | None = None
        self.disconnected_at: float | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.frames_sent = 0
        self.status_frames_sent = 0
        self.events_sent: Counter[str] = Counter()
        self.malformed_sent: Counter[str] = Counter()
        self.first_event_ms: int | None = None
        self.last_event_ms: int | None = None
        self.first_second_ms: int | None = None
        self.last_complete_second_ms: int | None = None
        self.paused = False
        self._queue: deque[Frame | _Close] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._armed: list[_Armed] = []
        self.closing = False
        self.writer: asyncio.Task[None] | None = None

    # --- called by the feed and the protocol handler ---------------------------------------------

    @property
    def active(self) -> bool:
        return self.authenticated and not self.closing and self.disconnected_at is None

    def apply_subscriptions(self) -> None:
        """At a second boundary, the acknowledged topics come into force."""
        if self.selection is None or self.selection.topics != self.topics:
            self.selection = Selection(frozenset(self.topics)) if self.topics else None

    def offer(self, frames: list[Frame]) -> None:
        if self.closing or not frames:
            return
        size = sum(len(frame.data) for frame in frames)
        if self.paced and not self.paused and self._queued_bytes + size > self.max_buffer_bytes:
            log.warning(
                "slow consumer",
                extra={"fields": {"connection": self.id, "queued_bytes": self._queued_bytes}},
            )
            self.kick("slow_consumer", "Connection was too slow to read the feed; closing.")
            return
        self._queue.extend(frames)
        self._queued_bytes += size
        if self._queued_bytes > self.max_buffer_bytes // 2:
            self._room.clear()
        self._wakeup.set()

    async def wait_for_room(self) -> None:
        await self._room.wait()

    def send_status(self, status: str, message: str) -> None:
        if not self.closing:
            self._queue.append(status_frame(status, message))
            self._wakeup.set()

    def kick(self, status: str, message: str, code: int = POLICY_CLOSE) -> None:
        """Drop the backlog, send one status, then close (slow_consumer, max_connections, ...)."""
        if self.closing:
            return
        self._queue.clear()
        self._queued_bytes = 0
        self._room.set()
        self._queue.append(status_frame(status, message))
        self.close(code, status)

    def close(self, code: int, reason: str) -> None:
        """Close after what is queued now."""
        if not self.closing:
            self.closing = True
            self._queue.append(_Close(code, reason))
            self._wakeup.set()

    def arm(self, fault: Fault) -> None:
        self._armed.append(_Armed(fault, self.frames_sent))
        self._wakeup.set()

    # --- the writer task --------------------------------------------------------------------------

    async def run_writer(self) -> None:
        try:
            while True:
                if await self._fire_faults():
                    return
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                item = self._queue.popleft()
                if isinstance(item, _Close):
                    await self._close(item.code, item.reason)
                    return
                await self._write(item)
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-write
            self.mark_disconnected(None, f"write failed: {type(exc).__name__}")
        finally:
            self._room.set()

    async def _write(self, frame: Frame) -> None:
        if frame.counts:
            self._queued_bytes -= len(frame.data)
            if self._queued_bytes <= self.max_buffer_bytes // 2:
                self._room.set()
        await self.ws.send_frame(frame.data, WSMsgType.TEXT)
        if not frame.counts:
            self.status_frames_sent += 1
            return
        self.frames_sent += 1
        self.events_sent.update(frame.counts)
        if self.first_event_ms is None or (
            frame.first_ms is not None and frame.first_ms < self.first_event_ms
        ):
            self.first_event_ms = frame.first_ms
        if self.last_event_ms is None or (frame.last_ms is not None and frame.last_ms > self.last_event_ms):
            self.last_event_ms = frame.last_ms
        if frame.second_ms is not None:
            if self.first_second_ms is None:
                self.first_second_ms = frame.second_ms
            if frame.completes_second:
                self.last_complete_second_ms = frame.second_ms

    async def _fire_faults(self) -> bool:
        """Act on armed faults whose frame count is reached; True when the connection closed."""
        for armed in list(self._armed):
            fault = armed.fault
            if self.frames_sent - armed.at_frame < fault.after_frames:
                continue
            self._armed.remove(armed)
            log.info("fault fired", extra={"fields": {"connection": self.id, **fault.model_dump()}})
            if fault.action == "pause":
                self.paused = True
                await asyncio.sleep(fault.seconds)  # the stall itself is the fault
                self.paused = False
            elif fault.action == "malformed":
                await self.ws.send_frame(MALFORMED_FRAMES[fault.variant], WSMsgType.TEXT)
                self.malformed_sent[fault.variant] += 1
            elif fault.action == "close":
                await self._close(fault.code, f"fault: close {fault.code}")
                return True
            else:
                status = "max_connections" if fault.action == "evict" else "force_disconnect"
                await self.ws.send_frame(status_frame(status, _MESSAGES[status]).data, WSMsgType.TEXT)
                self.status_frames_sent += 1
                await self._close(POLICY_CLOSE, status)
                return True
        return False

    async def _close(self, code: int, reason: str) -> None:
        self.closing = True
        self.close_code, self.close_reason = code, reason
        try:
            # A client that stopped reading never drains the close frame: give up after a while.
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()
        self.mark_disconnected(code, reason)

    def mark_disconnected(self, code: int | None, reason: str | None) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.time()
            self.closing = True
            if self.close_code is None:
                self.close_code, self.close_reason = code, reason
            self._wakeup.set()

    # --- reporting --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "market": self.market,
            "authenticated": self.authenticated,
            "subscriptions": sorted(self.topics),
            "connected_at": self.connected_at,
            "authenticated_at": self.authenticated_at,
            "disconnected_at": self.disconnected_at,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "frames_sent": self.frames_sent,
            "status_frames_sent": self.status_frames_sent,
            "events_sent": dict(sorted(self.events_sent.items())),
            "events_sent_total": sum(self.events_sent.values()),
            "malformed_sent": dict(self.malformed_sent),
            "first_event_ms": self.first_event_ms,
            "last_event_ms": self.last_event_ms,
            "first_second_ms": self.first_second_ms,
            "last_complete_second_ms": self.last_complete_second_ms,
            "queued_bytes": self._queued_bytes,
        }


_MESSAGES = {
    "max_connections": "Maximum number of websocket connections exceeded. You have reached the connection "
    "limit for your account.",
    "force_disconnect": "Connection was forcibly closed by the server.",
    "slow_consumer": "Connection was too slow to read the feed; closing.",
}
