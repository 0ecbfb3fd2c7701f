"""Run a job once a day at a fixed UTC time, in the foreground, until SIGTERM.

`tickpipe daily --at 06:00` and `tickpipe export --at 06:30` use it where no scheduler runs them
(docker-compose, a plain host): the process sleeps until the next run time, waiting on a stop
event with that deadline (never polling), runs the job, logs its exit code and sleeps again. A job
that fails is logged and retried at the next run; only SIGTERM/SIGINT end the loop. On AWS,
EventBridge Scheduler starts the same command without `--at`, once per run.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_at(text: str) -> dt.time:
    """`HH:MM` (24 h, UTC) -> a time; anything else raises ValueError naming the expected form."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"expected HH:MM (UTC, 24 h), got {text!r}")
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise ValueError(f"expected HH:MM (UTC, 24 h), got {text!r}")
    return dt.time(hour, minute, tzinfo=dt.UTC)


def next_run(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The first moment at `at` (UTC) strictly after `now`."""
    now = now.astimezone(dt.UTC)
    today = dt.datetime.combine(now.date(), at.replace(tzinfo=None), tzinfo=dt.UTC)
    return today if today > now else today + dt.timedelta(days=1)


def sleep_until(when: dt.datetime, stop: threading.Event, clock: Clock = utc_now) -> bool:
    """Wait until the wall clock reaches `when`; False if `stop` was set first.

    The wait is on the event with the remaining time as its timeout, re-measured against the wall
    clock after each wake-up (a long monotonic wait can end early or late if the clock is stepped).
    """
    while True:
        remaining = (when - clock()).total_seconds()
        if remaining <= 0:
            return not stop.is_set()
        if stop.wait(min(remaining, 3600.0)):
            return False


def run_daily(
    at: dt.time,
    job: Callable[[], int],
    stop: threading.Event,
    name: str,
    clock: Clock = utc_now,
    runs: int | None = None,
) -> int:
    """Run `job` every day at `at` until `stop` is set (or `runs` runs, for tests); returns 0."""
    done = 0
    while runs is None or done < runs:
        when = next_run(clock(), at)
        log.info(
            "%s: next run at %s", name, when.isoformat(), extra={"fields": {"next_run": when.isoformat()}}
        )
        if not sleep_until(when, stop, clock):
            break
        started = time.monotonic()
        try:
            code = job()
        except Exception:  # a failed run must not end the schedule: the next one may succeed
            log.exception("%s: the run failed", name)
            code = 1
        done += 1
        log.info(
            "%s: run finished",
            name,
            extra={"fields": {"exit_code": code, "seconds": round(time.monotonic() - started, 1)}},
        )
    return 0


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT set (call from the main thread)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
