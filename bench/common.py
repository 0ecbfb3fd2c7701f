"""What every benchmark shares: the machine description, process measurements, result recording."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tickpipe_local.kafka_broker import KafkaBroker

RESULTS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
RESULTS_MARKER = "<!-- bench results: rows appended by `python -m bench SCENARIO --record` -->"


@dataclass(frozen=True)
class Kafka:
    """The broker a benchmark runs against: `broker` is None for one it did not start (not measured)."""

    bootstrap: str
    broker: KafkaBroker | None


@contextlib.contextmanager
def kafka(workdir: Path) -> Iterator[Kafka]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a real local broker in `workdir/kafka`, stopped after."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield Kafka(existing, None)
        return
    broker = KafkaBroker(workdir / "kafka").start()
    try:
        yield Kafka(broker.bootstrap, broker)
    finally:
        broker.stop()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "java": java[0] if java else "none",
        "load_1m": round(os.getloadavg()[0], 2),
    }


def machine_line() -> str:
    m = machine()
    return (
        f"{m['cores']} cores, {m['memory_gib']:.0f} GiB, {m['cpu']}, Python {m['python']}, "
        f"load {m['load_1m']} at start"
    )


@dataclass
class ProcessSampler:
    """Peak RSS (VmHWM) of a process, and the CPU seconds it used since the first sample (/proc)."""

    pid: int
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0  # used since the first sample (not since the process started)
    _cpu_at_first_sample: float | None = None
    samples: list[float] = field(default_factory=list)

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        ticks = os.sysconf("SC_CLK_TCK")
        used = (int(stat[11]) + int(stat[12])) / ticks
        if self._cpu_at_first_sample is None:
            self._cpu_at_first_sample = used
        self.cpu_seconds = used - self._cpu_at_first_sample


def self_peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def record(scenario: str, result: dict[str, Any], summary: str) -> None:
    """Append a dated row to docs/benchmarks.md under the results marker."""
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    row = f"| {today} | `{scenario}` | {summary} | {machine_line()} |"
    text = RESULTS_DOC.read_text() if RESULTS_DOC.exists() else ""
    if RESULTS_MARKER not in text:
        text += (
            f"\n## Recorded runs\n\n{RESULTS_MARKER}\n\n| when (UTC) | scenario | result | machine |\n"
            "|---|---|---|---|\n"
        )
    RESULTS_DOC.write_text(text.rstrip("\n") + "\n" + row + "\n")


def dumps(result: dict[str, Any]) -> str:
    return orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
