"""Subscription topics: parsing `"A.AAPL, T.*"` and deciding which events a connection gets.

A topic is `EV.SYMBOL` or `EV.*` (every symbol), with EV one of the market's event types.
Polygon accepts comma lists with or without spaces, and acknowledges each topic separately.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

STOCK_EVENT_TYPES = ("A", "AM", "T", "Q")


class TopicError(ValueError):
    """A topic that is not `EV.SYMBOL`; the message names the topic and what is wrong."""


def split_topics(params: str) -> list[str]:
    """`"A.AAPL, T.*,,"` -> `["A.AAPL", "T.*"]` (blanks dropped, order and case kept)."""
    return [part.strip() for part in params.split(",") if part.strip()]


def parse_topic(topic: str, event_types: Iterable[str] = STOCK_EVENT_TYPES) -> tuple[str, str]:
    ev, dot, sym = topic.partition(".")
    allowed = tuple(event_types)
    if not dot or not ev or not sym:
        raise TopicError(f"invalid topic {topic!r}: expected EV.SYMBOL such as A.AAPL or T.*")
    if ev not in allowed:
        raise TopicError(f"invalid topic {topic!r}: unknown event type {ev!r} (known: {', '.join(allowed)})")
    return ev, sym


@dataclass(frozen=True)
class Selection:
    """The set of topics in force on a connection, as a fast filter."""

    topics: frozenset[str]

    @cached_property
    def wildcard_evs(self) -> frozenset[str]:
        return frozenset(topic.split(".", 1)[0] for topic in self.topics if topic.endswith(".*"))

    @cached_property
    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(
            (ev, sym)
            for ev, _, sym in (topic.partition(".") for topic in self.topics)
            if sym != "*" and ev not in self.wildcard_evs
        )

    def covers_all(self, event_types: Iterable[str]) -> bool:
        return set(event_types) <= self.wildcard_evs

    def indexes(self, evs: list[str], syms: list[str]) -> list[int]:
        """Positions of the events this selection wants, in order."""
        wild, pairs = self.wildcard_evs, self.pairs
        return [
            i for i, (ev, sym) in enumerate(zip(evs, syms, strict=True)) if ev in wild or (ev, sym) in pairs
        ]

    def wants(self, ev: str, sym: str) -> bool:
        return ev in self.wildcard_evs or (ev, sym) in self.pairs
