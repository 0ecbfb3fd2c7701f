"""The demo's live progress: events/s per stage, Kafka lag, rows in ClickHouse, DLQ counts, prices.

On a terminal rich redraws it in place (`render_rich` in a `rich.live.Live`); elsewhere `render`
gives the same figures as plain text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tickpipe_demo.monitor import Samples, by_label, total

if TYPE_CHECKING:
    from rich.console import RenderableType


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
    gaps: float = 0.0  # producer: websocket gaps found (published to FEED_GAPS_TOPIC)
    gaps_repaired: int = 0  # repair: gaps filled from REST
    rows_restored: int = 0  # repair: events restored into RAW_TOPIC


def snapshot(producer: Samples, processor: Samples, sink: Samples) -> Snapshot:
    """Read the counters each service exports (names as in docs/producer.md, processor.md, clickhouse.md)."""
    return Snapshot(
        at=time.monotonic(),
        received=total(producer, "tickpipe_producer_events_received_total"),
        produced=total(producer, "tickpipe_producer_events_produced_total"),
        reconnects=total(producer, "tickpipe_producer_reconnects_total"),
        gaps=total(producer, "tickpipe_producer_gaps_total"),
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


def _lag(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def stage_rows(now: Snapshot, before: Snapshot | None, rows: int | None) -> list[tuple[str, str, str, str]]:
    """(stage, events/s, total, notes) for each stage, formatted."""
    return [
        ("producer", f"{rate(now, before, 'produced'):,.0f}", f"{now.produced:,.0f}",
         f"reconnects {now.reconnects:,.0f}"),
        ("processor", f"{rate(now, before, 'processed_out'):,.0f}", f"{now.processed_out:,.0f}",
         f"in {now.processed_in:,.0f}, raw lag {_lag(now.raw_lag)}"),
        ("sink", f"{rate(now, before, 'sunk'):,.0f}", f"{now.sunk:,.0f}",
         f"filtered lag {_lag(now.filtered_lag)}"),
        ("clickhouse", "", "?" if rows is None else f"{rows:,}", "rows queryable"),
    ]  # fmt: skip


def footer_lines(now: Snapshot, prices: list[tuple[str, float]]) -> list[str]:
    lines = [
        "DLQ: "
        + (", ".join(f"{k} {v:,.0f}" for k, v in sorted(now.dlq.items()) if v) or "none")
        + (f"; sink DLQ {now.sink_dlq:,.0f}" if now.sink_dlq else "")
    ]
    dropped = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(now.filtered.items()) if v)
    if dropped:
        lines.append(f"filtered out by rule: {dropped}")
    if prices:
        lines.append("latest: " + "  ".join(f"{symbol} {price:,.2f}" for symbol, price in prices))
    return lines


def render(now: Snapshot, before: Snapshot | None, rows: int | None, prices: list[tuple[str, float]]) -> str:
    """The plain dashboard, for logs and pipes (no terminal codes)."""
    lines = [f"{'stage':<11}{'events/s':>12}{'total':>14}   notes"]
    lines += [
        f"{stage:<11}{per_s:>12}{count:>14}   {notes}"
        for stage, per_s, count, notes in stage_rows(now, before, rows)
    ]
    return "\n".join(lines + footer_lines(now, prices))


def render_rich(
    now: Snapshot, before: Snapshot | None, rows: int | None, prices: list[tuple[str, float]]
) -> RenderableType:
    """The same dashboard for a terminal, redrawn in place by rich's Live display."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("stage")
    table.add_column("events/s", justify="right")
    table.add_column("total", justify="right")
    table.add_column("notes")
    for row in stage_rows(now, before, rows):
        table.add_row(*row)
    return Group(table, *(Text(line) for line in footer_lines(now, prices)))
