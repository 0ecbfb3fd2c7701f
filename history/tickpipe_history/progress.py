"""Progress of a backfill: a tqdm bar (rate and ETA) on a terminal, JSON lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Protocol

import orjson


class Progress(Protocol):
    def advance(self, chunks: int, rows: int) -> None: ...

    def close(self) -> None: ...


class BarProgress:
    def __init__(self, total_chunks: int, stream: IO[str] | None = None):
        from tqdm import tqdm

        self.bar = tqdm(total=total_chunks, unit="chunk", file=stream or sys.stderr, dynamic_ncols=True)
        self.rows = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def advance(self, chunks: int, rows: int) -> None:
        with self.lock:
            self.rows += rows
            rate = self.rows / max(time.monotonic() - self.started, 1e-9)
            self.bar.set_postfix_str(f"{self.rows:,} rows, {rate:,.0f} rows/s", refresh=False)
            self.bar.update(chunks)

    def close(self) -> None:
        self.bar.close()


class JsonProgress:
    """One line per `every_s` seconds (and a last one): chunks, rows, rows/s, ETA."""

    def __init__(self, total_chunks: int, stream: IO[str] | None = None, every_s: float = 2.0):
        self.total = total_chunks
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.chunks = 0
        self.rows = 0
        self.started = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()

    def advance(self, chunks: int, rows: int) -> None:
        with self.lock:
            self.chunks += chunks
            self.rows += rows
            now = time.monotonic()
            if now - self.last >= self.every_s:
                self.last = now
                self._emit(now)

    def _emit(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        left = self.total - self.chunks
        eta = elapsed / self.chunks * left if self.chunks else None
        line: dict[str, Any] = {
            "event": "backfill_progress",
            "chunks_done": self.chunks,
            "chunks_total": self.total,
            "rows": self.rows,
            "rows_per_s": round(self.rows / elapsed),
            "elapsed_s": round(elapsed, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
        }
        self.stream.write(orjson.dumps(line).decode() + "\n")
        self.stream.flush()

    def close(self) -> None:
        with self.lock:
            self._emit(time.monotonic())


class NoProgress:
    def advance(self, chunks: int, rows: int) -> None:
        pass

    def close(self) -> None:
        pass


def make_progress(mode: str, total_chunks: int) -> Progress:
    """`auto`: a bar when stderr is a terminal, else JSON lines; or `bar`, `json`, `none`."""
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "json"
    if mode == "bar":
        return BarProgress(total_chunks)
    if mode == "json":
        return JsonProgress(total_chunks)
    return NoProgress()
