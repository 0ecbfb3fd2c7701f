"""Producer throughput and memory: simulator -> `tickpipe producer` (a real process) -> a real broker.

    python -m bench producer                                  # ceiling and paced runs
    python -m bench producer --param rate=100000 --param seconds=30
    python -m bench producer --param modes=ceiling --param baseline=DIR --param repeat=2   # before/after

- `ceiling`: the simulator runs `--speed 0` (its clock advances as fast as the client reads), so
  the producer's read-parse-produce loop is the limit: events produced per wall second.
- `paced`: real time at `rate` trades+quotes per second (A/AM on top) for `seconds`; reports what
  arrived, whether the producer kept up (the simulator's feed lag, no slow_consumer) and zero loss
  (events produced == events the simulator wrote to the socket).
Both report the producer's peak RSS (VmHWM), CPU seconds and CPU microseconds per event.
`baseline=DIR` also runs the producer of another checkout (its source folders on PYTHONPATH, this
environment otherwise), alternating baseline and this tree `repeat` times, so a change is measured
against its parent on the same machine in the same run. Target: >= 250k events/s from the
simulator with zero loss, peak RSS <= 150 MB.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ProcessSampler, kafka
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port
from tickpipe_demo.monitor import scrape, total
from tickpipe_demo.services import ServiceProcess
from tickpipe_simulator.testing import SimulatorProcess

TARGET_EVENTS_PER_SECOND = 250_000
TARGET_PEAK_RSS_MB = 150.0
CSV = "channel,symbol\nA,*\nAM,*\nT,*\nQ,*\n"


SOURCE_FOLDERS = ("", "apps", "processor", "producer", "clickhouse", "simulator")  # pyproject's packages


def _producer(
    workdir: Path, bootstrap: str, sim: SimulatorProcess, topic: str, baseline: str | None = None
) -> ServiceProcess:
    csv = workdir / "subscriptions.csv"
    csv.write_text(CSV)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(workdir)),
        "TICKPIPE_HOME": str(workdir / ".tickpipe"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RAW_TOPIC": topic,
        "POLYGON_FEED": sim.feed,
        "POLYGON_SECURE": "false",
        "POLYGON_API_KEY": sim.api_key,
        "SUBSCRIPTIONS_URI": str(csv),
        "LOG_LEVEL": "WARNING",
    }
    if baseline:
        env["PYTHONPATH"] = os.pathsep.join(str(Path(baseline, folder)) for folder in SOURCE_FOLDERS)
    return ServiceProcess("producer", ["producer"], env, workdir / f"{topic}.log", free_port())


def _measure(
    workdir: Path,
    bootstrap: str,
    sim_args: list[str],
    topic: str,
    budget: float,
    baseline: str | None = None,
) -> dict[str, Any]:
    ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=4)
    with SimulatorProcess(workdir, *sim_args, "--wait-for-subscriber") as sim:
        producer = _producer(workdir, bootstrap, sim, topic, baseline).start()
        assert producer.pid is not None
        sampler = ProcessSampler(producer.pid)

        def produced() -> float:
            return total(scrape(producer.metrics_url), "tickpipe_producer_events_produced_total")

        try:
            deadline = time.monotonic() + budget
            first: tuple[float, float] | None = None
            while time.monotonic() < deadline:
                sampler.sample()
                stats = sim.stats()
                done = produced()
                if first is None and done > 0:
                    first = (time.monotonic(), done)
                if stats["feed"]["finished"] and done >= stats["totals"]["events_sent_total"]:
                    break
                time.sleep(0.2)
            finished = time.monotonic()
            sampler.sample()
            stats = sim.stats()
            done = produced()
            code = producer.stop(30)
        finally:
            if producer.running():
                producer.kill()
    sent = stats["totals"]["events_sent_total"]
    assert first is not None, producer.tail()
    seconds = finished - first[0]
    statuses = [c.get("close_reason") for c in stats["connections"]]
    return {
        "events_sent": sent,
        "events_produced": int(done),
        "lost": int(sent - done),
        "seconds": round(seconds, 2),
        "events_per_second": round((done - first[1]) / seconds) if seconds > 0 else 0,
        "feed_max_lag_s": stats["feed"]["max_lag_s"],
        "close_reasons": statuses,
        "peak_rss_mb": round(sampler.peak_rss_mb, 1),
        "cpu_seconds": round(sampler.cpu_seconds, 1),
        "cpu_us_per_event": round(sampler.cpu_seconds / max(1.0, done - first[1]) * 1e6, 2),
        "load_1m": round(os.getloadavg()[0], 1),
        "exit_code": code,
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    rate = int(params.get("rate", "100000"))
    seconds = int(params.get("seconds", "30"))
    modes = params.get("modes", "ceiling,paced").split(",")
    baseline = params.get("baseline")
    repeat = int(params.get("repeat", "1"))
    engines: list[str | None] = [baseline, None] if baseline else [None]
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with kafka(workdir) as broker:
            bootstrap = broker.bootstrap
            common = ["--symbols", "100", "--seed", "7", "--max-frame-events", "1000"]
            sim_args = {
                "ceiling": [*common, "--rate", str(rate), "--speed", "0",
                            "--session-seconds", str(max(5, seconds // 3))],
                "paced": [*common, "--rate", str(rate), "--session-seconds", str(seconds)],
            }  # fmt: skip
            budget = {"ceiling": 300, "paced": seconds + 120}
            for attempt in range(repeat):
                for mode in modes:
                    for engine in engines:
                        name = f"{mode}_baseline" if engine else mode
                        topic = f"bench-{name}-{attempt}-{uuid.uuid4().hex[:8]}"
                        found = _measure(workdir, bootstrap, sim_args[mode], topic, budget[mode], engine)
                        runs.setdefault(name, []).append(found)
    best = {name: max(found, key=lambda r: r["events_per_second"]) for name, found in runs.items()}
    result: dict[str, Any] = {
        **best,
        "all_runs": {
            name: [(r["events_per_second"], r["cpu_us_per_event"], r["peak_rss_mb"], r["lost"]) for r in rs]
            for name, rs in runs.items()
        },
        "paced_rate_trades_quotes": rate,
        "targets": {"events_per_second": TARGET_EVENTS_PER_SECOND, "peak_rss_mb": TARGET_PEAK_RSS_MB},
    }
    parts = []
    for name, r in best.items():
        parts.append(
            f"{name} {r['events_per_second']:,} ev/s, {r['cpu_us_per_event']} us/ev, lost {r['lost']}, "
            f"peak RSS {r['peak_rss_mb']} MB"
        )
    summary = "; ".join(parts) + (
        f" (paced: {rate:,} trades+quotes/s for {seconds} s; targets >= {TARGET_EVENTS_PER_SECOND:,} ev/s, "
        f"<= {TARGET_PEAK_RSS_MB:.0f} MB)"
    )
    return result, summary


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["producer", *sys.argv[1:]]))
