"""Requests per minute shared by every worker, and a common pause when the server says "slow down"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket of `per_minute` requests (burst 1 s worth, at least one); 0 = unlimited.

    `pause(seconds)` holds every worker back (a 429's Retry-After applies to the key, not to one
    request), and `acquire()` waits for both the pause and a token.
    """

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()
        self.waited_s = 0.0

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                wait = self.paused_until - now
                if wait <= 0 and self.rate > 0:
                    self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                    self.updated = now
                    if self.tokens >= 1:
                        self.tokens -= 1
                        return
                    wait = (1 - self.tokens) / self.rate
                elif wait <= 0:
                    return
                self.waited_s += wait
            self.sleep(wait)  # rate limiting is waiting by definition
