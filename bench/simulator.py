"""How many events per second the simulator delivers to one fast client.

    python -m bench.simulator                      # both runs, JSON on stdout
    python -m bench.simulator --seconds 20 --paced-rate 250000

Two runs against a real `tickpipe simulate` subprocess, read by a raw websockets client in this
process (no JSON parsing on the client, so the client is not the bottleneck):
- `unpaced`: `--speed 0`, the clock runs as fast as the client reads: the simulator's ceiling.
- `paced`: real time at `--paced-rate` trades+quotes/s; reports what arrived, the feed's lag
  and whether the slow-consumer rule fired (it must not for a client that keeps up).
Events are counted by their `"ev":"` keys, minus status messages. Each mode runs `--repeat`
times and the best run is reported (on a shared machine the best is the least disturbed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import websockets

from tickpipe_simulator.testing import SimulatorProcess

TOPICS = "T.*,Q.*,A.*,AM.*"


async def _read(feed: str, api_key: str, seconds: float, warmup: float) -> dict[str, Any]:
    """Subscribe to everything and count events for `seconds` after `warmup` seconds of data."""
    async with websockets.connect(f"ws://{feed}/stocks", max_size=None, compression=None) as ws:
        await ws.recv()
        await ws.send(orjson.dumps({"action": "auth", "params": api_key}).decode())
        await ws.recv()
        await ws.send(orjson.dumps({"action": "subscribe", "params": TOPICS}).decode())
        events = frames = payload = 0
        started = measuring = None
        while True:
            data = await ws.recv(decode=False)
            now = time.perf_counter()
            if b'"ev":"status"' in data:
                continue
            if started is None:
                started = now
            if measuring is None:
                if now - started < warmup:
                    continue
                measuring = now
            events += data.count(b'"ev":"')
            frames += 1
            payload += len(data)
            if now - measuring >= seconds:
                break
        elapsed = time.perf_counter() - measuring
        return {
            "events": events,
            "frames": frames,
            "seconds": round(elapsed, 3),
            "events_per_s": round(events / elapsed),
            "mb_per_s": round(payload / elapsed / 1e6, 1),
            "avg_events_per_frame": round(events / max(frames, 1), 1),
        }


def _run(workdir: Path, sim_args: list[str], seconds: float, warmup: float) -> dict[str, Any]:
    with SimulatorProcess(workdir, *sim_args) as sim:
        result = asyncio.run(_read(sim.feed, sim.api_key, seconds, warmup))
        stats = sim.stats()
    conn = stats["connections"][0]
    result["slow_consumer"] = conn["close_reason"] == "slow_consumer"
    result["feed_max_lag_s"] = stats["feed"]["max_lag_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run [10]")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of data before measuring [2]")
    parser.add_argument("--paced-rate", type=float, default=200_000, help="trades+quotes/s of the paced run")
    parser.add_argument("--unpaced-rate", type=float, default=500_000, help="events per virtual second")
    parser.add_argument("--symbols", default="100")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; the best is reported [2]")
    args = parser.parse_args(argv)
    common = ["--symbols", args.symbols, "--seed", "1"]
    unpaced_args = [*common, "--rate", str(args.unpaced_rate), "--speed", "0"]
    paced_args = [*common, "--rate", str(args.paced_rate)]
    runs: dict[str, list[dict[str, Any]]] = {"unpaced": [], "paced": []}
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        for _ in range(args.repeat):
            runs["unpaced"].append(_run(Path(tmp), unpaced_args, args.seconds, args.warmup))
            runs["paced"].append(_run(Path(tmp), paced_args, args.seconds, args.warmup))
    unpaced = max(runs["unpaced"], key=lambda run: run["events_per_s"])
    paced = max(runs["paced"], key=lambda run: run["events_per_s"])
    load = os.getloadavg()
    result = {
        "benchmark": "simulator",
        "unpaced": unpaced,
        "paced": {"target_trades_quotes_per_s": args.paced_rate, **paced},
        "all_runs_events_per_s": {
            mode: [run["events_per_s"] for run in found] for mode, found in runs.items()
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_1m": round(load[0], 2),
        },
    }
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
