"""The hub: every connection of one market, the frames each gets per tick, and the totals.

Connections with the same subscriptions get the same frames, so frames are built once per
distinct selection per tick. API keys are known only as fingerprints (never logged or shown).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from collections import Counter
from typing import Any

from tickpipe_simulator.connection import Connection
from tickpipe_simulator.events import Tick
from tickpipe_simulator.faults import Fault
from tickpipe_simulator.frames import Frame, build_frames

log = logging.getLogger(__name__)

_ids = itertools.count(1)  # connection ids are unique across markets within one server


def key_fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Hub:
    def __init__(self, market: str, event_types: tuple[str, ...], max_frame_events: int, max_per_key: int):
        self.market = market
        self.event_types = event_types
        self.max_frame_events = max_frame_events
        self.max_per_key = max_per_key
        self.connections: dict[int, Connection] = {}
        self.subscribed = asyncio.Event()  # set while at least one connection has a selection
        self._pending_faults: list[Fault] = []  # targets "next" and "every"
        self.ticks_published = 0

    def new_id(self) -> int:
        return next(_ids)

    def add(self, conn: Connection) -> None:
        self.connections[conn.id] = conn

    def authenticated(self, conn: Connection, key: str) -> None:
        """Mark `conn` authenticated; evict the oldest connections of the same key over the limit."""
        conn.key_id = key_fingerprint(key)
        conn.authenticated = True
        same_key = [
            c for c in self.connections.values() if c.key_id == conn.key_id and c.active and c is not conn
        ]
        excess = len(same_key) + 1 - self.max_per_key
        for old in sorted(same_key, key=lambda c: c.connected_at)[: max(excess, 0)]:
            log.info("evicting older connection", extra={"fields": {"connection": old.id, "by": conn.id}})
            old.kick("max_connections", _MAX_CONNECTIONS)
        for fault in list(self._pending_faults):
            conn.arm(fault)
            if fault.target == "next":
                self._pending_faults.remove(fault)

    def subscriptions_changed(self) -> None:
        if any(c.topics for c in self.connections.values() if c.active):
            self.subscribed.set()
        else:
            self.subscribed.clear()

    def publish(self, tick: Tick) -> None:
        built: dict[frozenset[str], list[Frame]] = {}
        for conn in list(self.connections.values()):
            if not conn.active:
                continue
            if tick.opens_second:
                conn.apply_subscriptions()
            selection = conn.selection
            if selection is None:
                continue
            frames = built.get(selection.topics)
            if frames is None:
                frames = build_frames(tick, selection, self.max_frame_events, self.event_types)
                built[selection.topics] = frames
            conn.offer(frames)
        self.ticks_published += 1

    async def wait_for_room(self) -> None:
        """For an unpaced feed: until every subscribed connection has taken most of its backlog."""
        for conn in list(self.connections.values()):
            if conn.active and conn.selection is not None:
                await conn.wait_for_room()

    def arm(self, fault: Fault) -> list[int]:
        """Arm a fault; returns the ids of the open connections it was armed on."""
        if fault.connection is not None:
            conn = self.connections.get(fault.connection)
            if conn is None or not conn.active:
                return []
            conn.arm(fault)
            return [conn.id]
        if fault.target in ("next", "every"):
            self._pending_faults.append(fault)
            if fault.target == "next":
                return []
        armed = [c for c in self.connections.values() if c.active]
        for conn in armed:
            conn.arm(fault)
        return [c.id for c in armed]

    def snapshot(self) -> dict[str, Any]:
        conns = [c.snapshot() for c in self.connections.values()]
        events: Counter[str] = Counter()
        malformed: Counter[str] = Counter()
        for snap in conns:
            events.update(snap["events_sent"])
            malformed.update(snap["malformed_sent"])
        firsts = [s["first_event_ms"] for s in conns if s["first_event_ms"] is not None]
        lasts = [s["last_event_ms"] for s in conns if s["last_event_ms"] is not None]
        return {
            "connections": conns,
            "totals": {
                "connections": len(conns),
                "open_connections": sum(1 for c in self.connections.values() if c.disconnected_at is None),
                "frames_sent": sum(s["frames_sent"] for s in conns),
                "events_sent": dict(sorted(events.items())),
                "events_sent_total": sum(events.values()),
                "malformed_sent": dict(malformed),
                "first_event_ms": min(firsts) if firsts else None,
                "last_event_ms": max(lasts) if lasts else None,
            },
        }


_MAX_CONNECTIONS = (
    "Maximum number of websocket connections exceeded. "
    "You have reached the connection limit for your account."
)
