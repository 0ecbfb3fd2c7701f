"""The three services as separate processes, exactly as in production, with their logs in files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tickpipe.process import log_tail


@dataclass
class ServiceProcess:
    """`python -m tickpipe_cli <command>` with its own environment, log file and metrics port."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> ServiceProcess:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "METRICS_PORT": str(self.metrics_port), "LOG_FORMAT": "json"}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tickpipe_cli", *self.command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops us in order
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return self.process.poll() if self.process else None

    def signal(self, signum: int) -> None:
        if self.running():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait for a clean exit, SIGKILL at the deadline. Returns the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait(5)

    def kill(self) -> None:
        """kill -9 (chaos tests)."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def tail(self, lines: int = 20) -> str:
        return log_tail(self.log_file, lines)


def wait_until(condition: object, timeout: float, interval: float = 0.2) -> bool:
    """Poll a zero-argument callable until it is truthy or the deadline passes."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
