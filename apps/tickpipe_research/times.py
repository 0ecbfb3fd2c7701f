"""Times in: timezone-aware values, turned into the UTC text ClickHouse binds as DateTime64.

A naive datetime is refused (it would mean whatever the notebook's machine thinks local time is);
a `date`, or an ISO date string without a time, means midnight UTC of that day. Strings are read
with `datetime.fromisoformat` (`2026-12-01`, `2026-12-01T14:30:00Z`, `2026-12-01 09:30-05:00`).
pandas Timestamps are datetimes, so they work as they are.
"""

from __future__ import annotations

import datetime as dt

TimeLike = dt.datetime | dt.date | str
DurationLike = dt.timedelta | float | int


class NaiveTimeError(TypeError):
    """A time without a timezone: say which zone it is in (e.g. tzinfo=datetime.UTC)."""


def to_utc(value: TimeLike, name: str = "time") -> dt.datetime:
    """`value` as an aware datetime in UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed: dt.datetime | dt.date = (
                dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
            )
        except ValueError:
            raise ValueError(
                f"{name}: {value!r} is not an ISO date or time (e.g. 2026-12-01T14:30Z)"
            ) from None
        value = parsed
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise NaiveTimeError(
                f"{name}: {value.isoformat()} has no timezone; give one, e.g. "
                f"datetime({value.year}, {value.month}, {value.day}, tzinfo=datetime.UTC)"
            )
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise TypeError(f"{name}: expected a datetime, date or ISO string, got {type(value).__name__}")


def ch_time(value: TimeLike, name: str = "time") -> str:
    """The UTC text of `value` that a `{name:DateTime64(6, 'UTC')}` parameter parses exactly."""
    return to_utc(value, name).strftime("%Y-%m-%d %H:%M:%S.%f")


def window(start: TimeLike, end: TimeLike) -> tuple[str, str]:
    """[start, end) as bound parameters; an empty or reversed window is an error."""
    first, last = to_utc(start, "start"), to_utc(end, "end")
    if last <= first:
        raise ValueError(f"end ({last.isoformat()}) must be after start ({first.isoformat()})")
    return ch_time(first), ch_time(last)


def milliseconds(value: DurationLike, name: str = "duration") -> int:
    """A timedelta, or a number of seconds, as whole milliseconds (≥ 0)."""
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"{name} must not be negative (got {seconds} s)")
    return round(seconds * 1000)
