"""Run the simulator as a real subprocess from tests, benchmarks and chaos suites.

    with SimulatorProcess(tmp_path, "--session-seconds", "3", "--wait-for-subscriber") as sim:
        client = WebSocketClient(api_key=sim.api_key, feed=sim.feed, market="stocks", secure=False, raw=True)
        ...
        sim.fault(action="close", code=1011, after_frames=10)
        stats = sim.wait_stats(lambda s: s["feed"]["finished"], "the session to end")

The process gets an explicit environment, listens on a free port (`--port 0`, reported through a
ready file) and is always stopped on exit, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from tickpipe.process import spawn, stop_pid


class SimulatorError(RuntimeError):
    """The simulator did not start or answer; the message carries its log's tail."""


class SimulatorProcess:
    def __init__(
        self,
        workdir: Path,
        *args: str,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ):
        self.workdir = workdir
        self.args = args
        self.api_key = api_key or "test-" + secrets.token_hex(6)
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.port = 0
        self.log_file = workdir / f"simulator-{secrets.token_hex(3)}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def feed(self) -> str:
        """host:port as the official client's `feed` argument wants it."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SimulatorProcess:
        ready = self.log_file.with_suffix(".port")
        command = [sys.executable, "-m", "tickpipe_cli", "simulate", "--host", "127.0.0.1", "--port", "0"]
        command += ["--api-keys", self.api_key, "--ready-file", str(ready), *self.args]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.workdir)),
            "TICKPIPE_HOME": str(self.workdir / ".tickpipe"),
            "LOG_FORMAT": "json",
            **self.extra_env,
        }
        process = spawn(command, self.log_file, env=env, cwd=self.workdir)
        self.process = process
        deadline = time.monotonic() + self.start_timeout
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SimulatorError(f"simulator did not start (exit {process.poll()}):\n{self.log_tail()}")
            time.sleep(0.05)
        self.port = int(ready.read_text())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, timeout=10)
            self.process.poll()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # --- HTTP ---------------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """One HTTP request to the simulator; returns (status, decoded JSON body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, orjson.loads(response.read())
        finally:
            connection.close()

    def stats(self) -> dict[str, Any]:
        status, body = self.request("GET", "/_sim/stats")
        if status != 200:
            raise SimulatorError(f"/_sim/stats answered {status}: {body}")
        return dict(body)

    def fault(self, **fault: Any) -> dict[str, Any]:
        """Arm a fault (see faults.py), e.g. `fault(action="close", code=1011, after_frames=5)`."""
        status, body = self.request(
            "POST", "/_sim/fault", orjson.dumps(fault), {"Content-Type": "application/json"}
        )
        if status != 200:
            raise SimulatorError(f"fault refused ({status}): {body}")
        return dict(body)

    def wait_stats(
        self, condition: Callable[[dict[str, Any]], object], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll /_sim/stats until `condition(stats)` is truthy; SimulatorError at the deadline."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while not condition(stats):
            if time.monotonic() > deadline:
                raise SimulatorError(
                    f"timed out after {timeout:.0f} s waiting for {what}; last stats: {stats}"
                )
            time.sleep(0.05)
            stats = self.stats()
        return stats


class FeedCollector:
    """The official polygon WebSocketClient (raw mode) in a task, keeping every frame it receives.

    async with FeedCollector(sim, ["A.*", "T.*"]) as feed:
        await feed.wait_until(lambda: feed.event_count() >= 100, "100 events")
    """

    def __init__(
        self,
        sim: SimulatorProcess,
        topics: list[str],
        api_key: str | None = None,
        market: str = "stocks",
        **client: Any,
    ):
        from polygon import WebSocketClient

        self.client = WebSocketClient(
            api_key=api_key or sim.api_key,
            feed=sim.feed,
            market=market,
            secure=False,
            raw=True,
            subscriptions=topics,
            **client,
        )
        self.frames: list[list[dict[str, Any]]] = []
        self.unparsable: list[str | bytes] = []
        self.task: asyncio.Task[None] | None = None

    async def _on_frame(self, raw: str | bytes) -> None:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.unparsable.append(raw)
            return
        self.frames.append(frame)

    def events(self) -> list[dict[str, Any]]:
        return [event for frame in self.frames for event in frame if event.get("ev") != "status"]

    def statuses(self) -> list[dict[str, Any]]:
        return [event for frame in self.frames for event in frame if event.get("ev") == "status"]

    def event_count(self) -> int:
        return sum(1 for frame in self.frames for event in frame if event.get("ev") != "status")

    async def __aenter__(self) -> FeedCollector:
        self.task = asyncio.create_task(self.client.connect(self._on_frame))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            with contextlib.suppress(Exception):
                await self.client.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=5)
            if not self.task.done():
                self.task.cancel()

    async def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
        """Poll `condition` (while the client runs) until truthy; AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.task is not None and self.task.done() and self.task.exception() is not None:
                raise AssertionError(f"the client failed while waiting for {what}: {self.task.exception()!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.05)
