"""The demo's live progress: events/s per stage, Kafka lag, rows in ClickHouse, DLQ counts, prices."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tickpipe_demo.monitor import Samples, by_label, total


@dataclass
class Snapshot:
    at: float
    received: float = 0.0  # producer: events read from the websocket
    produced: float = 0.0  # producer: events handed to Kafka
    processed_in: float = 0.0  # processor: raw messages consumed
    processed_out: float = 0.0  # processor: filtered messages produced
    dlq: dict[str, float] = field(default_factory=dict)  # processor DLQ by reason
    filtered: dict[str, float] = field(default_factory=dict)  # processor drops by rule
    sunk: float = 0.0  # sink: rows ClickHouse acknowledged
    sink_dlq: float = 0.0
    raw_lag: int | None = None
    filtered_lag: int | None = None
    reconnects: float = 0.0


def snapshot(producer: Samples, processor: Samples, sink: Samples) -> Snapshot:
    """Read the counters each service exports (names as in docs/producer.md, processor.md, clickhouse.md)."""
    return Snapshot(
        at=time.monotonic(),
        received=total(producer, "tickpipe_producer_events_received_total"),
        produced=total(producer, "tickpipe_producer_events_produced_total"),
        reconnects=total(producer, "tickpipe_producer_reconnects_total"),
        processed_in=total(processor, "tickpipe_processor_messages_in_total"),
        processed_out=total(processor, "tickpipe_processor_messages_out_total"),
        dlq=by_label(processor, "tickpipe_processor_dead_letters_total", "reason"),
        filtered=by_label(processor, "tickpipe_processor_filtered_total", "rule"),
        sunk=total(sink, "tickpipe_sink_rows_total"),
        sink_dlq=total(sink, "tickpipe_sink_dlq_rows_total"),
    )


def rate(now: Snapshot, before: Snapshot | None, attribute: str) -> float:
    if before is None or now.at <= before.at:
        return 0.0
    delta = float(getattr(now, attribute)) - float(getattr(before, attribute))
    return max(0.0, delta / (now.at - before.at))


def render(now: Snapshot, before: Snapshot | None, rows: int | None, prices: list[tuple[str, float]]) -> str:
    """A small fixed-width dashboard (redrawn in place on a terminal)."""

    def lag(value: int | None) -> str:
        return "?" if value is None else f"{value:,}"

    lines = [
        f"{'stage':<11}{'events/s':>12}{'total':>14}   notes",
        f"{'producer':<11}{rate(now, before, 'produced'):>12,.0f}{now.produced:>14,.0f}"
        f"   reconnects {now.reconnects:,.0f}",
        f"{'processor':<11}{rate(now, before, 'processed_out'):>12,.0f}{now.processed_out:>14,.0f}"
        f"   in {now.processed_in:,.0f}, raw lag {lag(now.raw_lag)}",
        f"{'sink':<11}{rate(now, before, 'sunk'):>12,.0f}{now.sunk:>14,.0f}"
        f"   filtered lag {lag(now.filtered_lag)}",
        f"{'clickhouse':<11}{'':>12}{'?' if rows is None else f'{rows:,}':>14}   rows queryable",
        "DLQ: "
        + (", ".join(f"{k} {v:,.0f}" for k, v in sorted(now.dlq.items()) if v) or "none")
        + (f"; sink DLQ {now.sink_dlq:,.0f}" if now.sink_dlq else ""),
    ]
    dropped = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(now.filtered.items()) if v)
    if dropped:
        lines.append(f"filtered out by rule: {dropped}")
    if prices:
        lines.append("latest: " + "  ".join(f"{symbol} {price:,.2f}" for symbol, price in prices))
    return "\n".join(lines)
