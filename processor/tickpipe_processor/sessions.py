"""US equity trading sessions in America/New_York, fast enough to ask once per message.

Regular hours are 09:30-16:00 and extended hours 04:00-20:00, Monday to Friday, New York time.
Exchange holidays are not known here (a holiday's events are judged like a weekday's).

Converting every timestamp through `zoneinfo` costs microseconds. New York changes its UTC offset
only on whole UTC hours, so the offset is looked up once per UTC hour, and every answer is cached
per minute (the sessions start and end on whole minutes): the hot path is one dict lookup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_MINUTE_MS = 60_000

# Minutes after New York midnight: [start, end) of each session.
SESSION_MINUTES = {"regular": (9 * 60 + 30, 16 * 60), "extended": (4 * 60, 20 * 60)}


@lru_cache(maxsize=4096)
def _offset_ms(utc_hour: int) -> int:
    moment = datetime.fromtimestamp(utc_hour * 3600, tz=UTC).astimezone(NEW_YORK)
    offset = moment.utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


class SessionClock:
    """`clock.open(ts_ms)`: is Unix-ms `ts_ms` inside `session`? Cached per minute."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.minutes: dict[int, bool] = {}

    def open(self, ts_ms: int) -> bool:
        minute = ts_ms // _MINUTE_MS
        answer = self.minutes.get(minute)
        if answer is None:
            if len(self.minutes) > 100_000:  # about 70 days of minutes: start over
                self.minutes.clear()
            answer = self.minutes[minute] = in_session(minute * _MINUTE_MS, self.session)
        return answer


def in_session(ts_ms: int, session: str) -> bool:
    """True when Unix-ms `ts_ms` falls in `session` ("regular", "extended" or "all")."""
    if session == "all":
        return True
    local_ms = ts_ms + _offset_ms(ts_ms // _HOUR_MS)
    days, in_day = divmod(local_ms, _DAY_MS)
    if (days + 3) % 7 >= 5:  # 1970-01-01 was a Thursday (Monday = 0): 5, 6 are the weekend
        return False
    start, end = SESSION_MINUTES[session]
    return start <= in_day // _MINUTE_MS < end
