"""tickpipe.schedule: the next run time, the wait on a deadline, and the daily loop."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from tickpipe.schedule import next_run, parse_at, run_daily, sleep_until

UTC = dt.UTC


def test_parse_at_takes_hh_mm_utc_only() -> None:
    assert parse_at("06:30") == dt.time(6, 30, tzinfo=UTC)
    assert parse_at("0:05") == dt.time(0, 5, tzinfo=UTC)
    for bad in ("6", "24:00", "06:60", "06:3", "six:30", "06:30:00", ""):
        with pytest.raises(ValueError, match="HH:MM"):
            parse_at(bad)


def test_next_run_is_today_if_still_ahead_else_tomorrow() -> None:
    at = parse_at("06:00")
    assert next_run(dt.datetime(2026, 12, 1, 5, 59, tzinfo=UTC), at) == dt.datetime(
        2026, 12, 1, 6, tzinfo=UTC
    )
    assert next_run(dt.datetime(2026, 12, 1, 6, 0, tzinfo=UTC), at) == dt.datetime(2026, 12, 2, 6, tzinfo=UTC)
    assert next_run(dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC), at) == dt.datetime(
        2027, 1, 1, 6, tzinfo=UTC
    )
    # another zone's wall clock is converted, not read as UTC
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert next_run(dt.datetime(2026, 12, 1, 0, 30, tzinfo=eastern), at) == dt.datetime(
        2026, 12, 1, 6, tzinfo=UTC
    )


class FakeClock:
    """A wall clock that moves only when the stop event's wait is asked to time out."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now


class ClockEvent(threading.Event):
    def __init__(self, clock: FakeClock, stop_after_waits: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.stop_after_waits = stop_after_waits

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "never an unbounded wait"
        assert timeout > 0, "never a busy wait"
        self.clock.waits.append(timeout)
        if self.stop_after_waits is not None and len(self.clock.waits) >= self.stop_after_waits:
            self.set()
            return True
        self.clock.now += dt.timedelta(seconds=timeout)
        return self.is_set()


def test_sleep_until_waits_out_the_deadline_in_bounded_steps() -> None:
    clock = FakeClock(dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    stop = ClockEvent(clock)
    assert sleep_until(dt.datetime(2026, 12, 1, 6, 0, tzinfo=UTC), stop, clock) is True
    assert clock.now == dt.datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert clock.waits == [3600.0] * 6


def test_run_daily_runs_once_a_day_at_the_time_and_survives_a_failing_run() -> None:
    clock = FakeClock(dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    ran: list[dt.datetime] = []

    def job() -> int:
        ran.append(clock.now)
        if len(ran) == 1:
            raise RuntimeError("REST is down")
        return 4

    assert run_daily(parse_at("06:30"), job, ClockEvent(clock), "test", clock, runs=2) == 0
    assert ran == [dt.datetime(2026, 12, 2, 6, 30, tzinfo=UTC), dt.datetime(2026, 12, 3, 6, 30, tzinfo=UTC)]


def test_run_daily_stops_while_waiting() -> None:
    clock = FakeClock(dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
    ran: list[int] = []

    def job() -> int:
        ran.append(1)
        return 0

    assert run_daily(parse_at("06:30"), job, ClockEvent(clock, 3), "test", clock) == 0
    assert ran == []
