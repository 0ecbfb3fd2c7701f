"""A queue between the websocket reader and the Kafka publisher, bounded by bytes.

The reader offers frames without waiting; the publisher drains them in batches. When the queue is
full the reader awaits room (counted as `queue_full`): the feed then sees a slow reader, which is
visible and recoverable, instead of the producer dropping frames it has already read.
"""

from __future__ import annotations

import threading
from collections import deque

Frame = tuple[int, str | bytes]  # (received at, Unix ns; the raw websocket frame)


class FrameQueue:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: deque[Frame] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # signalled when items arrive
        self._room = threading.Condition(self._lock)  # signalled when items leave

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, frame: Frame) -> bool:
        """Append unless the queue is full; never blocks. An empty queue always takes one frame."""
        with self._lock:
            if self._items and self._bytes + len(frame[1]) > self.max_bytes:
                return False
            self._append(frame)
            return True

    def put(self, frame: Frame, timeout: float | None = None) -> bool:
        """Append, waiting for room up to `timeout`; False if there was no room in time."""
        with self._lock:
            ok = self._room.wait_for(
                lambda: not self._items or self._bytes + len(frame[1]) <= self.max_bytes, timeout
            )
            if ok:
                self._append(frame)
            return ok

    def _append(self, frame: Frame) -> None:
        self._items.append(frame)
        self._bytes += len(frame[1])
        self._ready.notify()

    def drain(self, timeout: float, max_items: int = 1000) -> list[Frame]:
        """Take up to `max_items` frames, waiting up to `timeout` for the first one."""
        with self._lock:
            if not self._items:
                self._ready.wait(timeout)
            taken: list[Frame] = []
            while self._items and len(taken) < max_items:
                frame = self._items.popleft()
                self._bytes -= len(frame[1])
                taken.append(frame)
            if taken:
                self._room.notify_all()
            return taken
