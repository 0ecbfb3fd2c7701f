"""Kafka broker start-up: first time (fetch the jars with Maven, then start) and cached.

`python -m bench kafka-start` measures a cached start (jars already fetched) into a fresh data
folder; `--param first=true` also measures a first-time fetch into a fresh cache and a fresh
Maven repository (downloads from Maven Central).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tickpipe_local.kafka_broker import KafkaBroker, fetch_jars

TARGET_CACHED_SECONDS = 20.0


def _start_once(workdir: Path) -> float:
    started = time.perf_counter()
    broker = KafkaBroker(workdir).start()
    seconds = time.perf_counter() - started
    broker.stop()
    return seconds


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if params.get("first") == "true":
            os.environ["TICKPIPE_CACHE"] = str(Path(tmp) / "cache")
            os.environ["MAVEN_OPTS"] = f"-Dmaven.repo.local={Path(tmp) / 'm2'}"
            started = time.perf_counter()
            fetch_jars()
            result["first_fetch_seconds"] = round(time.perf_counter() - started, 2)
            result["first_start_seconds"] = round(_start_once(Path(tmp) / "first"), 2)
        fetch_jars()
        starts = [_start_once(Path(tmp) / f"cached-{i}") for i in range(3)]
    result["cached_start_seconds"] = [round(s, 2) for s in starts]
    result["target_cached_seconds"] = TARGET_CACHED_SECONDS
    best, worst = min(starts), max(starts)
    summary = f"cached start {best:.1f}-{worst:.1f} s (target < {TARGET_CACHED_SECONDS:.0f} s)"
    if "first_fetch_seconds" in result:
        summary = (
            f"first fetch {result['first_fetch_seconds']} s + start {result['first_start_seconds']} s; "
            + summary
        )
    return result, summary
