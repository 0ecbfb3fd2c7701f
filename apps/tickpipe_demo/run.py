"""`tickpipe demo`: the local stack, migrations, then producer, processor, sink and the gap repair
(`tickpipe repair`) as separate processes exactly as in production, and the live web console
(`tickpipe web`, its URL printed), with live progress, until Ctrl-C or `--duration`.

Stopping is ordered so that nothing in flight is lost and the final counts agree stage by stage:
the simulator stops emitting, the producer drains what it read, the repair stops once it has
committed every gap the producer published, then the processor and the sink stop once they have
read everything. The summary (`.tickpipe/demo-summary.json`) records every stage's count and the
gaps (found by the producer, recorded and repaired in the `feed_gaps` table, which the sink
writes, and the rows restored), and `tickpipe report` prints the analytics and draws the chart.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tickpipe import contract
from tickpipe.config import BaseServiceSettings, load_settings
from tickpipe.kafka import ensure_topics
from tickpipe.paths import home
from tickpipe.process import free_port
from tickpipe_demo.monitor import KafkaWatcher, scrape, total
from tickpipe_demo.progress import Snapshot, render, render_rich, snapshot
from tickpipe_demo.services import ServiceProcess, wait_until
from tickpipe_demo.simulator_control import events_sent, quiesce, simulator_stats
from tickpipe_local import stack

log = logging.getLogger(__name__)

PROCESSOR_GROUP = "tickpipe-processor"
SINK_GROUP = "tickpipe-sink"
REPAIR_GROUP = "tickpipe-repair"
PIPELINE = ("producer", "processor", "sink")  # the stages the progress and the web console show


@dataclass
class DemoOptions:
    duration: float | None = None  # seconds; None = until Ctrl-C
    live: bool = False  # POLYGON_API_KEY was set by the user: stream the real feed
    poll_seconds: float = 5.0  # the demo checks the subscriptions CSV this often
    interactive: bool = True  # redraw progress in place (a terminal); else print a line now and then
    report: bool = True


def summary_path() -> Path:
    return home() / "demo-summary.json"


def run_demo(options: DemoOptions) -> int:
    already_running = {part.name for part in stack.status() if part.running}
    settings = stack.up(with_simulator=not options.live)
    try:
        return _run_services(options, settings)
    finally:
        started = {"kafka", "s3", "simulator"} - already_running
        if started:
            stack.down()
            print(f"stopped the local stack parts this demo started: {', '.join(sorted(started))}")


def _run_services(options: DemoOptions, settings: dict[str, str]) -> int:
    env = _service_env(settings, options)
    raw, filtered = env["RAW_TOPIC"], env["FILTERED_TOPIC"]
    kafka = {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
    topics = load_settings(BaseServiceSettings, {"raw_topic": raw, "filtered_topic": filtered})
    ensure_topics(kafka, topics.topic_partitions())
    logs = home() / "logs"
    services = {
        name: ServiceProcess(name, [name], env, logs / f"{name}.log", free_port())
        # consumers first: nothing waits on a rebalance later
        for name in ("sink", "processor", "repair", "producer")
    }
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    codes: dict[str, int | None] = {}
    final: Snapshot | None = None
    console = _web_console(env, services, logs)
    try:
        if not _migrate(env, logs):
            return 1
        for service in services.values():
            service.start()
        if not _wait_healthy(services, stop):
            return 1
        console.start()
        web_up = wait_until(lambda: stop.is_set() or not console.running() or _answers(console), 30)
        _print_banner(settings, options, services, console if web_up and console.running() else None)
        _watch(services, env, options, stop)
        codes, final = _stop_in_order(services, env, options)
    finally:
        for service in services.values():
            if service.running():
                codes[service.name] = service.stop(10)
        console.stop(10)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    summary = _final_summary(options, env, codes, final)
    summary_path().write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nstopped: {', '.join(f'{name} (exit {code})' for name, code in codes.items())}")
    gaps = summary["gaps"]
    print(
        f"feed gaps: {gaps['found']} found by the producer, {gaps['recorded']} in feed_gaps, "
        f"{gaps['repaired']} repaired, {gaps['rows_restored']} rows restored from REST"
    )
    if options.report:
        from tickpipe_demo.report import print_report

        print_report(env["CLICKHOUSE_DSN"])
    print(f"summary: {summary_path()}")
    return 0 if codes and all(code == 0 for code in codes.values()) else 1


def _web_console(env: dict[str, str], services: dict[str, ServiceProcess], logs: Path) -> ServiceProcess:
    """`tickpipe web` on a free loopback port, reading the three services' metrics."""
    web_env = {
        **env,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(free_port()),
        **{f"WEB_{name.upper()}_METRICS": services[name].metrics_url for name in PIPELINE},
    }
    return ServiceProcess("web", ["web"], web_env, logs / "web.log", 0)


def _web_url(console: ServiceProcess) -> str:
    return f"http://127.0.0.1:{console.env['WEB_PORT']}/"


def _answers(console: ServiceProcess) -> bool:
    try:
        with urllib.request.urlopen(_web_url(console) + "healthz", timeout=1):  # noqa: S310 - loopback
            return True
    except OSError:
        return False


def _service_env(settings: dict[str, str], options: DemoOptions) -> dict[str, str]:
    env = {**os.environ, **settings}
    env.setdefault("RAW_TOPIC", "polygon_stream_aggregates")
    env.setdefault("FILTERED_TOPIC", "custom_filtered_stock_data_topic")
    env["SUBSCRIPTIONS_POLL_SECONDS"] = str(options.poll_seconds)
    env["PROCESSOR_GROUP_ID"] = PROCESSOR_GROUP
    env["SINK_GROUP_ID"] = SINK_GROUP
    if not options.live:
        # The simulator's REST API has each second as soon as its websocket sent it: the repair
        # need not wait for REST to catch up (Polygon's REST trails the feed; REPAIR_* settings).
        env.setdefault("REPAIR_REST_LAG_SECONDS", "0")
        env.setdefault("REPAIR_REST_MAX_WAIT_SECONDS", "0")
    if options.live:
        # The user's own feed settings, never the local simulator's from .tickpipe/local.env.
        from tickpipe_cli.cli import user_environment

        for key in ("POLYGON_API_KEY", "POLYGON_FEED", "POLYGON_SECURE", "POLYGON_REST_URL"):
            env.pop(key, None)
            if key in user_environment():
                env[key] = os.environ[key]
    return env


def _migrate(env: dict[str, str], logs: Path) -> bool:
    migrate = ServiceProcess("migrate", ["migrate"], env, logs / "migrate.log", 0).start()
    assert migrate.process is not None
    code = migrate.process.wait(120)
    if code != 0:
        print(f"migrations failed (exit {code}):\n{migrate.tail()}", file=sys.stderr)
    return code == 0


def _wait_healthy(services: dict[str, ServiceProcess], stop: threading.Event) -> bool:
    for service in services.values():
        healthy = wait_until(
            lambda s=service: stop.is_set() or not s.running() or bool(scrape(s.metrics_url)), 90
        )
        if stop.is_set():
            return False
        if not healthy or not service.running():
            print(
                f"{service.name} did not start (exit {service.returncode()}):\n{service.tail()}",
                file=sys.stderr,
            )
            return False
    return True


def _print_banner(
    settings: dict[str, str],
    options: DemoOptions,
    services: dict[str, ServiceProcess],
    console: ServiceProcess | None,
) -> None:
    feed = "the live Polygon feed" if options.live else f"the simulator at {settings.get('POLYGON_FEED')}"
    ports = ", ".join(f"{name} :{service.metrics_port}" for name, service in services.items())
    lines = [
        f"tickpipe demo: {feed} -> Kafka -> processor -> Kafka -> ClickHouse ({settings['CLICKHOUSE_DSN']})",
        f"logs: {home() / 'logs'}   metrics and /healthz: {ports}",
        f"live console: {_web_url(console)}"
        if console
        else f"live console did not start: see {home() / 'logs' / 'web.log'}",
        "query from another terminal:",
        '    .venv/bin/tickpipe query "SELECT symbol, count() FROM trades GROUP BY symbol ORDER BY 2 DESC"',
        f"change the symbols (the producer follows within {options.poll_seconds:.0f} s, no restart):",
        "    cp producer/subscriptions.example.csv my.csv   # edit my.csv, then:",
        "    .venv/bin/tickpipe subscriptions push my.csv   # validates it, then uploads it to",
        f"    {settings['SUBSCRIPTIONS_URI']}",
        "stop with Ctrl-C",
        "",
    ]
    print("\n".join(lines), flush=True)


def _watch(
    services: dict[str, ServiceProcess], env: dict[str, str], options: DemoOptions, stop: threading.Event
) -> None:
    from tickpipe_demo.report import latest_prices, queryable_rows

    watcher = KafkaWatcher(env["KAFKA_BOOTSTRAP_SERVERS"])
    deadline = time.monotonic() + options.duration if options.duration else None
    before: Snapshot | None = None
    last_print = 0.0
    live = None
    if options.interactive:
        from rich.live import Live

        live = Live(auto_refresh=False, transient=False)
        live.start()
    try:
        while not stop.wait(1.0):
            if deadline and time.monotonic() >= deadline:
                break
            crashed = [s for s in services.values() if not s.running()]  # the repair too
            if crashed:
                for service in crashed:
                    print(
                        f"\n{service.name} exited with {service.returncode()}:\n{service.tail()}",
                        file=sys.stderr,
                    )
                break
            now = snapshot(*(scrape(services[name].metrics_url) for name in PIPELINE))
            now.raw_lag = _safe(lambda: watcher.lag(PROCESSOR_GROUP, [env["RAW_TOPIC"]]))
            now.filtered_lag = _safe(lambda: watcher.lag(SINK_GROUP, [env["FILTERED_TOPIC"]]))
            if live is not None:
                dsn = env["CLICKHOUSE_DSN"]
                live.update(render_rich(now, before, queryable_rows(dsn), latest_prices(dsn)), refresh=True)
            elif time.monotonic() - last_print >= 5:
                print(render(now, before, queryable_rows(env["CLICKHOUSE_DSN"]), []), flush=True)
                last_print = time.monotonic()
            before = now
    finally:
        if live is not None:
            live.stop()
        watcher.close()


def _stop_in_order(
    services: dict[str, ServiceProcess], env: dict[str, str], options: DemoOptions
) -> tuple[dict[str, int | None], Snapshot]:
    """Stop each stage once it has caught up; returns exit codes and the final counters."""
    codes: dict[str, int | None] = {}
    print("\nstopping: the feed first, then each stage once it has caught up ...", flush=True)
    if not options.live:
        quiesce(env["POLYGON_FEED"])
        wait_until(lambda: _producer_caught_up(services["producer"], env), 30)
    producer_final = scrape(services["producer"].metrics_url)
    codes["producer"] = services["producer"].stop(30)
    watcher = KafkaWatcher(env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        # Every gap the producer published is repaired (committed) before the repair stops.
        gaps_topic = env.get("FEED_GAPS_TOPIC", contract.FEED_GAPS_TOPIC)
        wait_until(lambda: watcher.lag(env.get("REPAIR_GROUP_ID", REPAIR_GROUP), [gaps_topic]) == 0, 90)
        repair_final = scrape(services["repair"].metrics_url)
        codes["repair"] = services["repair"].stop(30)
        # RAW_TOPIC holds the repair's transactions: their commit markers count in the end offsets,
        # so what the processor has left is counted by reading it (KafkaWatcher.unread).
        wait_until(lambda: watcher.unread(PROCESSOR_GROUP, env["RAW_TOPIC"]) == 0, 60)
        processor_final = scrape(services["processor"].metrics_url)
        codes["processor"] = services["processor"].stop(30)
        wait_until(lambda: watcher.unread(SINK_GROUP, env["FILTERED_TOPIC"]) == 0, 60)
        states = env.get("GAP_STATES_TOPIC", contract.GAP_STATES_TOPIC)
        wait_until(lambda: watcher.unread(SINK_GROUP, states) == 0, 30)  # feed_gaps is complete
        sink_final = scrape(services["sink"].metrics_url)
        codes["sink"] = services["sink"].stop(30)
    finally:
        watcher.close()
    final = snapshot(producer_final, processor_final, sink_final)
    final.gaps_repaired = int(total(repair_final, "tickpipe_repair_gaps_total"))
    final.rows_restored = int(total(repair_final, "tickpipe_repair_events_total"))
    return codes, final


def _producer_caught_up(producer: ServiceProcess, env: dict[str, str]) -> bool:
    """Everything the simulator sent has been read and handed to Kafka."""
    sent = events_sent(env["POLYGON_FEED"])
    metrics = scrape(producer.metrics_url)
    received = snapshot(metrics, {}, {}).received
    queued = total(metrics, "tickpipe_producer_queue_bytes")
    return sent is not None and received >= sent and queued == 0


def _final_summary(
    options: DemoOptions, env: dict[str, str], codes: dict[str, int | None], final: Snapshot | None
) -> dict[str, Any]:
    from tickpipe_demo.report import gap_counts, table_counts

    summary: dict[str, Any] = {"exit_codes": codes, "options": asdict(options)}
    if not options.live:
        summary["simulator_sent"] = events_sent(env["POLYGON_FEED"])
        summary["simulator_stats"] = simulator_stats(env["POLYGON_FEED"])
    if final is not None:
        summary["stages"] = {
            "producer_produced": final.produced,
            "processor_in": final.processed_in,
            "processor_out": final.processed_out,
            "processor_dlq": sum(final.dlq.values()),
            "processor_filtered": sum(final.filtered.values()),
            "sink_rows": final.sunk,
            "sink_dlq": final.sink_dlq,
            "repair_gaps_repaired": final.gaps_repaired,
            "repair_rows_restored": final.rows_restored,
        }
    summary["clickhouse_rows"] = table_counts(env["CLICKHOUSE_DSN"])
    summary["gaps"] = {
        "found": int(final.gaps) if final is not None else None,
        **gap_counts(env["CLICKHOUSE_DSN"]),
    }
    return summary


def _safe(call: Any) -> Any:
    try:
        return call()
    except Exception:
        return None
