"""The feed: a source of ticks, a virtual clock, and the hub they are published to.

Sources yield `Batch`es: a unit of work (a simulated second, or one recorded frame) that ends at
`end_offset_s` virtual seconds after the session start, and whose ticks are built only if
someone is subscribed. The clock runs at `speed` virtual seconds per wall second; speed 0 means
"as fast as the subscribed clients read" (the feed waits for room instead of dropping anyone).
When the source is exhausted the feed goes quiet; connections stay open.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tickpipe_simulator.bars import BarHistory
from tickpipe_simulator.events import Tick, event_symbol, event_time, second_ticks
from tickpipe_simulator.hub import Hub
from tickpipe_simulator.market import Market, SecondData
from tickpipe_simulator.recording import read_recording
from tickpipe_simulator.tick_history import TickHistory

log = logging.getLogger(__name__)


@dataclass
class Batch:
    end_offset_s: float
    build: Callable[[], Iterable[Tick]]
    done: Callable[[], None] | None = None  # runs once the batch's time has come (e.g. REST history)


def generated_batches(
    market: Market, history: BarHistory | None, ticks: TickHistory | None = None
) -> Iterator[Batch]:
    while (data := market.next_second()) is not None:
        done = None if history is None else partial(_remember, history, ticks, data)
        yield Batch(data.index + 1.0, partial(second_ticks, market, data), done)


def _remember(history: BarHistory, ticks: TickHistory | None, data: SecondData) -> None:
    history.add(data.second_agg)
    if ticks is not None:
        ticks.add(data)


def replay_batches(path: Path) -> Iterator[Batch]:
    first_ns: int | None = None
    for frame in read_recording(path):
        if first_ns is None:
            first_ns = frame.recv_ns
        offset = (frame.recv_ns - first_ns) / 1e9
        events = frame.events
        tick = Tick(
            offset_s=offset,
            events=events,
            evs=[str(event.get("ev")) for event in events],
            syms=[event_symbol(event) for event in events],
            times=[event_time(event) for event in events],
        )
        yield Batch(offset, partial(iter, [tick]))


class Feed:
    def __init__(
        self,
        hub: Hub,
        batches: Iterator[Batch],
        speed: float,
        wait_for_subscriber: bool,
        rest_lag_seconds: int = 0,
    ):
        self.hub = hub
        self.rest_lag_seconds = rest_lag_seconds  # REST history trails the websocket by this many batches
        self.batches = batches
        self.speed = speed
        self.wait_for_subscriber = wait_for_subscriber or speed == 0
        self.started = False
        self.finished = False
        self.lag_s = 0.0  # how far the feed was behind its clock at the last tick
        self.max_lag_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.wait_for_subscriber:
            await self.hub.subscribed.wait()
        self.started = True
        t0 = loop.time()
        lagging: deque[Callable[[], None]] = deque()
        for batch in self.batches:
            if self.speed == 0:
                await self.hub.subscribed.wait()
            ticks = batch.build() if self.hub.subscribed.is_set() else ()
            for tick in ticks:
                if self.speed > 0:
                    await self._pace(t0 + tick.offset_s / self.speed)
                else:
                    await self.hub.wait_for_room()
                self.hub.publish(tick)
                if self.speed == 0:
                    # Hand the tick to the writers before building the next one, so the socket
                    # drains to the client while we generate (pipelining, not bursts).
                    await asyncio.sleep(0)
            if self.speed > 0:
                await self._pace(t0 + batch.end_offset_s / self.speed)
            if batch.done is not None:
                lagging.append(batch.done)
            while len(lagging) > self.rest_lag_seconds:
                lagging.popleft()()
        while lagging:  # the session is over: REST catches up
            lagging.popleft()()
        self.finished = True
        log.info("session complete: the feed is quiet, connections stay open")

    async def _pace(self, when: float) -> None:
        delay = when - asyncio.get_running_loop().time()
        self.lag_s = max(0.0, -delay)
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        await asyncio.sleep(max(delay, 0.0))  # wall-clock pacing of the virtual clock, not a test wait
