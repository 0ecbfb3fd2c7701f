"""Frames: a tick's events for one selection, cut into JSON arrays of at most N events.

Each frame carries its own counts (events per `ev`, first and last event time), so a
connection can account for exactly what it wrote without parsing its own output.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson

from tickpipe_simulator.events import Tick
from tickpipe_simulator.topics import Selection


@dataclass(frozen=True)
class Frame:
    data: bytes
    counts: dict[str, int] = field(default_factory=dict)  # events per ev type; empty for statuses
    first_ms: int | None = None
    last_ms: int | None = None
    second_ms: int | None = None
    completes_second: bool = False  # the last frame of a second (its aggregates included)


def status_frame(status: str, message: str) -> Frame:
    return Frame(orjson.dumps([{"ev": "status", "status": status, "message": message}]))


def build_frames(
    tick: Tick, selection: Selection, max_events: int, event_types: tuple[str, ...]
) -> list[Frame]:
    """The frames one connection with `selection` receives for `tick` (possibly none)."""
    if selection.covers_all(event_types):
        events, evs, times = tick.events, tick.evs, tick.times
    else:
        wanted = selection.indexes(tick.evs, tick.syms)
        events = [tick.events[i] for i in wanted]
        evs = [tick.evs[i] for i in wanted]
        times = [tick.times[i] for i in wanted]
    frames: list[Frame] = []
    total = len(events)
    for lo in range(0, total, max_events):
        hi = min(lo + max_events, total)
        chunk_times = times[lo:hi]
        frames.append(
            Frame(
                data=orjson.dumps(events[lo:hi]),
                counts=dict(Counter(evs[lo:hi])),
                first_ms=min(chunk_times),
                last_ms=max(chunk_times),
                second_ms=tick.second_ms,
                completes_second=tick.closes_second and hi == total,
            )
        )
    return frames
