"""Soak: the whole pipeline at a steady rate for many minutes, measured minute by minute (not in CI).

    python -m bench soak                                  # 20k events/s for 30 minutes
    python -m bench soak --param minutes=3                # a short run while developing
    python -m bench soak --param probe=none               # no latency probe (its cost, measured)

The simulator, the producer, the processor, the sink (chDB) and the broker run as separate
processes, as in `bench e2e` (the producer, so the feed, starts once the sink and the processor
hold their partitions). Reported for every minute of the session:
- events the simulator sent, rows in ClickHouse, and how far ClickHouse is behind at the minute's end
  (the run ends with zero loss only if every sent event is a row);
- event -> queryable p50/p99/max of the trades the probe first saw in that minute;
- CPU per event (microseconds of CPU per event sent in that minute) and RSS (VmRSS at the minute's
  end) of the producer, the processor, the sink, the broker and the simulator;
- the sink's chDB: active parts per table, merges running, and the sink's time inside inserts;
- the broker's and the sink's CPU per thread name, the busiest five (the broker's JIT compiler
  against its request threads; the sink's chDB merges against its inserts and its Python).
After the drain, with the sink still running, the saved queries (`tickpipe query --saved`) are timed
through its query endpoint over the parts the run left (`queries_at_end`: what more active parts
cost a reader). A final verdict checks the targets: zero loss, p99 <= 2 s in every minute, CPU per
event of every process within +-20% of the baseline minute (minute 5, or a third of a shorter run)
up to the end, and RSS at the end < 10% above the baseline minute's.

The probe (`probe=`): `key` (default) asks the sink's query endpoint every `probe_ms` (50) for the
new trades of eight busy symbols in the last seconds, bounded on the table's key (symbol,
timestamp) so each poll reads a few granules whatever the table's size; `scan` is the probe
`bench e2e` used before its key bound (bounded on `received` only, an ALIAS column outside the key:
each poll reads every row of the eight symbols since the start, a cost that grows with the
table); `none` runs no probe.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.e2e import PROBED_SYMBOLS, LatencyProbe, _percentiles, _services, _start_feed_last
from tickpipe_demo.monitor import scrape, total
from tickpipe_demo.services import ServiceProcess
from tickpipe_local.kafka_broker import KafkaBroker
from tickpipe_simulator.testing import SimulatorProcess

TARGET_P99_SECONDS = 2.0
CPU_BAND = 0.20
RSS_GROWTH = 0.10
SAMPLE_SECONDS = 1.0
# Processes whose CPU is also reported per thread name each minute: the broker's JIT compiler and
# request threads, the sink's chDB merges against its inserts and its Python.
THREADS_OF = ("broker", "sink")
KEY_PROBE = (
    "SELECT symbol, sequence, toUnixTimestamp64Nano(received), toUnixTimestamp64Milli(timestamp) FROM trades "
    "WHERE symbol IN ({symbols:Array(String)}) AND timestamp > fromUnixTimestamp64Milli({since:Int64}, 'UTC')"
)
# The probe `bench e2e` used before its key bound: kept to measure what it cost (`probe=scan`).
SCAN_PROBE = (
    "SELECT symbol, sequence, toUnixTimestamp64Nano(received) FROM trades "
    "WHERE symbol IN ({symbols:Array(String)}) AND received > now64(3) - INTERVAL 10 SECOND"
)
SLACK_MS = 10_000  # rows may become visible out of their time order (different inserts) by less than this
PARTS = (
    "SELECT table, count(), sum(rows) FROM system.parts WHERE database = currentDatabase() AND active "
    "GROUP BY table ORDER BY table"
)
MERGES = "SELECT count() FROM system.merges WHERE database = currentDatabase()"
# Cumulative counters of the sink's engine: merges and what they rewrote, parts and rows written by
# inserts (views included), and rows read by queries (the probe's and the views' reads).
ENGINE_EVENTS = (
    "Merge",
    "MergedRows",
    "MergeTotalMilliseconds",
    "MergeTreeDataWriterBlocks",
    "MergeTreeDataWriterRows",
    "SelectQuery",
    "SelectedRows",
)
EVENTS = "SELECT event, value FROM system.events WHERE event IN ({names:Array(String)})"
# Saved queries timed at the end, with their parameters: one symbol's bars and spread, every symbol's
# vwap, movers and latest price.
END_QUERIES = {
    "bars": {"symbol": PROBED_SYMBOLS[0]},
    "spread": {"symbol": PROBED_SYMBOLS[0]},
    "vwap": {},
    "top_movers": {},
    "latest": {},
}
END_RUNS = 7


class ScanProbe(LatencyProbe):
    """The e2e probe without its key bound: each poll reads the eight symbols since the start."""

    SQL = SCAN_PROBE


class KeyProbe(LatencyProbe):
    """The e2e probe, bounded on the key (symbol, timestamp) from a watermark: each poll reads the
    trades of eight symbols since the newest one seen minus a slack, however far behind the pipeline
    is (a trade that becomes queryable late is still seen, with its late latency)."""

    def __init__(self, chdb_folder: Path):
        super().__init__(chdb_folder)
        self.since_ms = int(time.time() * 1000) - 60_000
        self.seen_at: dict[tuple[str, int], int] = {}

    def poll(self) -> None:
        reply = self.ask(KEY_PROBE, {"symbols": PROBED_SYMBOLS, "since": self.since_ms})
        if reply is None:
            return
        asked, answer = reply
        newest = self.since_ms
        for line in answer.splitlines():
            symbol, sequence, received_ns, ts_ms = line.split(b"\t")
            key = (symbol.decode(), int(sequence))
            newest = max(newest, int(ts_ms))
            if key not in self.seen_at:
                self.seen_at[key] = int(ts_ms)
                self.latencies.append(asked - int(received_ns) / 1e9)
        since = max(self.since_ms, newest - SLACK_MS)
        if since > self.since_ms + SLACK_MS:  # forget what the next polls cannot return
            self.seen_at = {k: t for k, t in self.seen_at.items() if t > since}
            self.since_ms = since


@dataclass
class Proc:
    """CPU seconds used (since start) and resident memory now, from /proc."""

    pid: int

    def read(self) -> tuple[float, float]:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0, 0.0
        rss = next(
            (int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0
        )
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK"), rss

    def threads(self) -> dict[str, tuple[str, float]]:
        """Per thread id: its name now and the CPU seconds it used so far, from /proc."""
        used: dict[str, tuple[str, float]] = {}
        ticks = os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                name = (task / "comm").read_text().strip()
                stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended between the listing and the read
            used[task.name] = (name, (int(stat[11]) + int(stat[12])) / ticks)
        return used


@dataclass
class Minute:
    started_cpu: dict[str, float]
    started_sent: int
    started_insert_seconds: float
    latencies_from: int
    started_threads: dict[str, dict[str, tuple[str, float]]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    max_lag: dict[str, float] = field(default_factory=lambda: {"processor": 0.0, "sink": 0.0})


def _chdb_state(client: Any) -> dict[str, Any]:
    if client is None:
        return {}
    try:
        parts = client.query(PARTS).result_rows
        merges = client.query(MERGES).result_rows[0][0]
        events = dict(client.query(EVENTS, parameters={"names": list(ENGINE_EVENTS)}).result_rows)
    except Exception as error:  # the endpoint busy or refusing: report, do not stop the soak
        return {"error": type(error).__name__}
    return {
        "active_parts": {str(t): int(n) for t, n, _ in parts},
        "rows": {str(t): int(r) for t, _, r in parts},
        "merges_running": int(merges),
        "engine_events_total": {str(k): int(v) for k, v in events.items()},
    }


def _time_queries(client: Any) -> dict[str, Any]:
    """Each END_QUERIES query END_RUNS times through the sink's endpoint: wall ms, min and median."""
    if client is None:
        return {}
    from tickpipe_clickhouse.query.saved import saved_query

    timed: dict[str, Any] = {}
    for name, given in END_QUERIES.items():
        query = saved_query(name)
        params = query.bind(given)
        walls, rows = [], 0
        try:
            for _ in range(END_RUNS):
                started = time.perf_counter()
                rows = len(client.query(query.sql, parameters=params).result_rows)
                walls.append((time.perf_counter() - started) * 1000)
        except Exception as error:  # report, do not lose the soak's result
            timed[name] = {"error": type(error).__name__}
            continue
        timed[name] = {
            "min_ms": round(min(walls), 1),
            "median_ms": round(statistics.median(walls), 1),
            "rows": rows,
        }
    return timed


def _close_minute(
    index: int,
    minute: Minute,
    procs: dict[str, Proc],
    sent: int,
    rows: float,
    insert_seconds: float,
    latencies: list[float],
    endpoint: Any,
) -> tuple[dict[str, Any], dict[str, float], dict[str, dict[str, tuple[str, float]]]]:
    now = {name: p.read() for name, p in procs.items()}
    threads = {name: procs[name].threads() for name in THREADS_OF}
    events = sent - minute.started_sent
    cpu = {name: now[name][0] - minute.started_cpu[name] for name in procs}
    latency = _percentiles(latencies[minute.latencies_from :])
    seconds = time.monotonic() - minute.started_at
    row = {
        "minute": index,
        "seconds": round(seconds, 1),
        "events_sent": events,
        "events_per_second": round(events / seconds),
        "rows_behind_at_end": int(sent - rows),
        "max_consumer_lag": dict(minute.max_lag),
        "latency_event_to_queryable": latency,
        "cpu_us_per_event": {n: round(c / events * 1e6, 2) if events else None for n, c in cpu.items()},
        "cpu_seconds": {n: round(c, 1) for n, c in cpu.items()},
        "rss_mb": {n: round(now[n][1], 1) for n in procs},
        "cpu_seconds_by_thread": {
            name: _busiest(threads[name], minute.started_threads.get(name, {})) for name in THREADS_OF
        },
        "sink_insert_seconds": round(insert_seconds - minute.started_insert_seconds, 1),
        "chdb": _chdb_state(endpoint),
    }
    return row, {name: now[name][0] for name in procs}, threads


def _busiest(
    now: dict[str, tuple[str, float]], before: dict[str, tuple[str, float]], top: int = 5
) -> dict[str, float]:
    """The `top` thread names by CPU seconds used between `before` and `now`.

    Per thread id, then summed by the name the thread has now: chDB renames a thread for the work it
    is doing, so a name's total alone would credit a renamed thread's whole past to its new name.
    """
    used: dict[str, float] = {}
    for tid, (name, cpu) in now.items():
        used[name] = used.get(name, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    return {name: round(cpu, 1) for name, cpu in sorted(used.items(), key=lambda kv: -kv[1])[:top] if cpu > 0}


def _engine_deltas(rows: list[dict[str, Any]]) -> None:
    """Each minute's share of the engine's cumulative counters (`engine_events`)."""
    before: dict[str, int] = {}
    for row in rows:
        now = row["chdb"].get("engine_events_total")
        if now is None:
            continue
        row["chdb"]["engine_events"] = {k: v - before.get(k, 0) for k, v in now.items()}
        before = now


def _line(row: dict[str, Any]) -> str:
    lat = row["latency_event_to_queryable"]
    cpu = ", ".join(f"{n} {v}" for n, v in row["cpu_us_per_event"].items())
    rss = ", ".join(f"{n} {v:.0f}" for n, v in row["rss_mb"].items())
    parts = row["chdb"].get("active_parts", {})
    return (
        f"minute {row['minute']}: {row['events_per_second']:,} ev/s, behind {row['rows_behind_at_end']:,}, "
        f"p50/p99 {lat.get('p50_ms')}/{lat.get('p99_ms')} ms; CPU us/event: {cpu}; RSS MB: {rss}; "
        f"parts {sum(parts.values())}, merges {row['chdb'].get('merges_running')}, "
        f"sink inserts {row['sink_insert_seconds']} s"
    )


def _soak(
    workdir: Path, broker: KafkaBroker, rate: int, minutes: int, probe_kind: str, probe_ms: int
) -> dict[str, Any]:
    tag = f"soak{rate}"
    seconds = minutes * 60
    sim_args = ["--seed", "9", "--symbols", "100", "--rate", str(rate), "--session-seconds", str(seconds)]
    with SimulatorProcess(workdir, *sim_args, "--wait-for-subscriber") as sim:
        services: dict[str, ServiceProcess] = _services(workdir, broker.bootstrap, sim, tag)
        folder = workdir / f"chdb-{tag}"
        kinds: dict[str, type[LatencyProbe]] = {"key": KeyProbe, "scan": ScanProbe}
        prober = kinds[probe_kind](folder) if probe_kind in kinds else None
        rows_list: list[dict[str, Any]] = []
        try:
            _start_feed_last(broker.bootstrap, services, tag)
            assert broker.pid is not None
            assert sim.process is not None
            procs = {name: Proc(s.process.pid) for name, s in services.items() if s.process is not None}
            procs["broker"] = Proc(broker.pid)
            procs["simulator"] = Proc(sim.process.pid)
            from tickpipe_clickhouse.query.client import live_endpoint

            endpoint = None
            # The session starts when the producer subscribes; minute 1 starts with the first event.
            deadline = time.monotonic() + 120
            while sim.stats()["totals"]["events_sent_total"] == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("the simulator sent nothing within 120 s")
                time.sleep(0.1)
            latencies: list[float] = prober.latencies if prober else []
            cpu_now = {name: p.read()[0] for name, p in procs.items()}
            threads_now = {name: procs[name].threads() for name in THREADS_OF}
            minute = Minute(cpu_now, 0, 0.0, 0, threads_now)
            minute_ends = time.monotonic() + 60
            next_sample = time.monotonic()
            next_probe = time.monotonic()
            sent, rows, insert_seconds = 0, 0.0, 0.0
            finished_at: float | None = None
            session_closed = done = False
            end_by = time.monotonic() + seconds + 180
            while time.monotonic() < end_by:
                now = time.monotonic()
                if prober is not None and now >= next_probe:
                    prober.poll()
                    next_probe = now + probe_ms / 1000
                if now >= next_sample:
                    next_sample = now + SAMPLE_SECONDS
                    if endpoint is None:
                        endpoint = live_endpoint(folder)
                    for name in ("processor", "sink"):
                        lag = total(scrape(services[name].metrics_url), f"tickpipe_{name}_consumer_lag")
                        minute.max_lag[name] = max(minute.max_lag[name], lag)
                    stats = sim.stats()
                    sent = int(stats["totals"]["events_sent_total"])
                    sink_metrics = scrape(services["sink"].metrics_url)
                    rows = total(sink_metrics, "tickpipe_sink_rows_total")
                    insert_seconds = total(sink_metrics, "tickpipe_sink_insert_seconds_sum")
                    if stats["feed"]["finished"] and finished_at is None:
                        finished_at = now
                    done = finished_at is not None and rows >= sent
                if not session_closed and (now >= minute_ends or finished_at is not None):
                    session_closed = finished_at is not None  # the last, partial minute of the session
                    row, cpu_now, threads_now = _close_minute(
                        len(rows_list) + 1, minute, procs, sent, rows, insert_seconds, latencies, endpoint
                    )
                    rows_list.append(row)
                    print(_line(row), file=sys.stderr, flush=True)
                    minute = Minute(cpu_now, sent, insert_seconds, len(latencies), threads_now)
                    minute_ends += 60
                if done and session_closed:
                    break
                time.sleep(min(0.01, probe_ms / 1000))
            drain = time.monotonic() - finished_at if finished_at else None
            final_chdb = _chdb_state(endpoint)
            end_queries = _time_queries(endpoint) if done else {}
            drain_latency = _percentiles(latencies[minute.latencies_from :])
            drain_cpu = {name: round(p.read()[0] - minute.started_cpu[name], 1) for name, p in procs.items()}
        finally:
            for name in ("producer", "processor", "sink"):
                services[name].stop(30)
    _engine_deltas(rows_list)
    return {
        "rate_trades_quotes": rate,
        "minutes": minutes,
        "probe": probe_kind,
        "probe_ms": probe_ms if prober else None,
        "events_sent": sent,
        "rows_in_clickhouse": int(rows),
        "drained": done,  # every sent event a row before the deadline (session + 180 s)
        "rows_behind_at_deadline": int(sent - rows),
        "zero_loss": done and int(rows) == sent,
        "drain_seconds_after_session": round(drain, 2) if drain is not None else None,
        "drain_cpu_seconds": drain_cpu,
        "drain_latency_event_to_queryable": drain_latency,
        "latency_event_to_queryable": _percentiles(latencies),
        "per_minute": rows_list,
        "chdb_at_end": final_chdb,
        "queries_at_end": end_queries,
    }


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    every = result["per_minute"]
    minutes = [m for m in every if m["seconds"] >= 55] or every  # the full minutes: a partial last one
    if not minutes:
        return {"ok": False, "why": "no full minute measured"}
    base_index = min(5, max(1, len(minutes) // 3))
    base, last = minutes[base_index - 1], minutes[-1]
    p99s = [m["latency_event_to_queryable"].get("p99_ms") for m in every]
    p99_ok = result["probe"] == "none" or all(p is not None and p <= TARGET_P99_SECONDS * 1000 for p in p99s)
    cpu: dict[str, Any] = {}
    for name, at_base in base["cpu_us_per_event"].items():
        later = [m["cpu_us_per_event"][name] for m in minutes[base_index - 1 :]]
        if not at_base or None in later:
            cpu[name] = {"ok": False}
            continue
        worst = max(later, key=lambda v: abs(v / at_base - 1))
        cpu[name] = {
            "baseline": at_base,
            "end": last["cpu_us_per_event"][name],
            "worst_ratio": round(worst / at_base, 2),
            "ok": abs(worst / at_base - 1) <= CPU_BAND,
        }
    rss = {
        name: {
            "baseline_mb": at_base,
            "end_mb": last["rss_mb"][name],
            "growth": round(last["rss_mb"][name] / at_base - 1, 3) if at_base else None,
            "ok": bool(at_base) and last["rss_mb"][name] / at_base - 1 < RSS_GROWTH,
        }
        for name, at_base in base["rss_mb"].items()
    }
    return {
        "baseline_minute": base_index,
        "zero_loss": result["zero_loss"],
        "p99_within_target_every_minute": p99_ok,
        "worst_minute_p99_ms": max((p for p in p99s if p is not None), default=None),
        "cpu_per_event": cpu,
        "rss": rss,
        "ok": result["zero_loss"]
        and p99_ok
        and all(c["ok"] for c in cpu.values())
        and all(r["ok"] for r in rss.values()),
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    rate = int(params.get("rate", "20000"))
    minutes = int(params.get("minutes", "30"))
    probe = params.get("probe", "key")
    probe_ms = int(params.get("probe_ms", "200"))
    if probe not in ("key", "scan", "none"):
        raise SystemExit("probe must be key, scan or none")
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        workdir = Path(tmp)
        broker = KafkaBroker(workdir / "kafka").start()
        try:
            result = _soak(workdir, broker, rate, minutes, probe, probe_ms)
        finally:
            broker.stop()
    result["verdict"] = verdict(result)
    v = result["verdict"]
    drift = ", ".join(f"{n} {c.get('worst_ratio')}" for n, c in v["cpu_per_event"].items())
    growth = ", ".join(f"{n} {r['growth']}" for n, r in v["rss"].items())
    if result["zero_loss"]:
        loss = "loss 0"
    elif result["drained"]:
        loss = f"LOSS {result['events_sent'] - result['rows_in_clickhouse']:,}"
    else:
        loss = f"not drained by the deadline ({result['rows_behind_at_deadline']:,} rows behind)"
    summary = (
        f"soak {rate:,} trades+quotes/s x {minutes} min (probe {probe}): "
        f"{'PASS' if v.get('ok') else 'FAIL'}; {loss}, "
        f"worst minute p99 {v.get('worst_minute_p99_ms')} ms (target <= {TARGET_P99_SECONDS * 1000:.0f}); "
        f"CPU/event worst ratio to minute {v.get('baseline_minute')}: {drift} (band +-{CPU_BAND:.0%}); "
        f"RSS growth: {growth} (target < {RSS_GROWTH:.0%})"
    )
    return result, summary
