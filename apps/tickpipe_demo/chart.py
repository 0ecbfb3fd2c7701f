"""A candlestick-and-volume chart as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

UP, DOWN = "#1a9850", "#d73027"


def candlestick_png(path: Path, symbol: str, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    column = {name: index for index, name in enumerate(names)}
    times = [_as_datetime(row[column["bucket"]]) for row in rows]
    opens = [float(row[column["open"]]) for row in rows]
    highs = [float(row[column["high"]]) for row in rows]
    lows = [float(row[column["low"]]) for row in rows]
    closes = [float(row[column["close"]]) for row in rows]
    volumes = [float(row[column["volume"]]) for row in rows]
    step = (times[1] - times[0]).total_seconds() if len(times) > 1 else 60.0
    width = step / 86400 * 0.7  # matplotlib dates are in days

    figure, (price, volume) = plt.subplots(
        2, 1, sharex=True, figsize=(11, 6), gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    for when, o, h, low, c, v in zip(times, opens, highs, lows, closes, volumes, strict=True):
        color = UP if c >= o else DOWN
        x = mdates.date2num(when)  # type: ignore[no-untyped-call]
        price.vlines(x, low, h, color=color, linewidth=1)
        price.add_patch(
            matplotlib.patches.Rectangle(
                (x - width / 2, min(o, c)), width, max(abs(c - o), 1e-9), color=color
            )
        )
        volume.bar(x, v, width=width, color=color)
    price.set_title(f"{symbol}: {len(rows)} candles of {step:.0f} s (tickpipe, from ClickHouse)")
    price.set_ylabel("price")
    price.autoscale_view()
    volume.set_ylabel("volume")
    volume.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))
