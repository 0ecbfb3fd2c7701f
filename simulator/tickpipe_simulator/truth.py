"""Ground truth: recompute the events of a simulated session, exactly as the server sent them.

    from tickpipe_simulator.truth import MarketSpec, session_events, spec_from_stats

    stats = requests.get(f"http://{host}:{port}/_sim/stats").json()
    spec = spec_from_stats(stats)                       # or MarketSpec(seed=..., start_ms=..., ...)
    conn = stats["connections"][0]
    expected = list(session_events(spec, conn["first_second_ms"], conn["last_complete_second_ms"] + 1000,
                                   topics=conn["subscriptions"]))

Events come in the order the server sends them: per second, its trades and quotes by time, then
the second's `A` events, then (when the second closes a clock minute) the minute's `AM` events.
A connection's subscriptions take effect at a second boundary, so a connection receives whole
seconds; `first_second_ms` and `last_complete_second_ms` in the stats bound them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tickpipe_simulator.events import event_symbol, second_ticks
from tickpipe_simulator.kinds import Event
from tickpipe_simulator.market import Market
from tickpipe_simulator.spec import MarketSpec
from tickpipe_simulator.topics import Selection

__all__ = ["MarketSpec", "session_events", "session_seconds", "spec_from_stats"]


def spec_from_stats(stats: dict[str, Any]) -> MarketSpec:
    """The MarketSpec of a running simulator, from its `GET /_sim/stats` answer."""
    session = stats["session"]
    fields = {name: session[name] for name in MarketSpec.__dataclass_fields__}
    return MarketSpec.from_dict(fields)


def session_seconds(
    spec: MarketSpec, from_ms: int | None = None, to_ms: int | None = None
) -> Iterator[list[Event]]:
    """The events of each second whose start lies in [from_ms, to_ms), one list per second."""
    market = Market(spec)
    while (data := market.next_second()) is not None:
        if to_ms is not None and data.second_ms >= to_ms:
            return
        if from_ms is not None and data.second_ms < from_ms:
            continue
        yield [event for tick in second_ticks(market, data) for event in tick.events]


def session_events(
    spec: MarketSpec,
    from_ms: int | None = None,
    to_ms: int | None = None,
    topics: Iterable[str] | None = None,
) -> Iterator[Event]:
    """Every event of seconds starting in [from_ms, to_ms) that `topics` selects, in send order.

    `topics` defaults to every event type of the spec's market (`A.*`, `AM.*`, `T.*`, `Q.*` for
    stocks). An endless session (session_seconds 0) needs `to_ms`.
    """
    if to_ms is None and not spec.session_seconds:
        raise ValueError("an endless session needs to_ms")
    wanted = topics if topics is not None else [f"{ev}.*" for ev in spec.kind.event_types]
    selection = Selection(frozenset(wanted))
    for events in session_seconds(spec, from_ms, to_ms):
        for event in events:
            if selection.wants(event["ev"], event_symbol(event)):
                yield event
