"""The pipeline under chaos: producer, processor, sink and the gap repair as real processes, restarted
like ECS would.

`Pipeline` starts each service with its own environment and log file, kills with SIGKILL, and
restarts any service that exits (a supervisor, as ECS is in production). Every action is logged
with its wall-clock time so the verification can tell which websocket sessions a kill cut short.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tickpipe.process import free_port
from tickpipe_demo.services import ServiceProcess

SERVICES = ("sink", "processor", "repair", "producer")


@dataclass
class Action:
    at: float  # Unix seconds
    what: str  # "kill", "restart_after_exit", "broker_restart", "ws_1011", "ws_evict", "clickhouse_down", ...
    target: str = ""
    detail: str = ""


@dataclass
class Pipeline:
    workdir: Path
    env: dict[str, str]
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    generations: Counter[str] = field(default_factory=Counter)
    actions: list[Action] = field(default_factory=list)
    stopping: bool = False

    def _new(self, name: str) -> ServiceProcess:
        generation = self.generations[name]
        self.generations[name] += 1
        env = dict(self.env)
        if name == "processor":
            env["PROCESSOR_INSTANCE_ID"] = "chaos-processor-0"  # the same id again: fences the killed one
        if name == "sink":
            env["SINK_INSTANCE_ID"] = "chaos-sink-0"
        if name == "repair":  # the producer's settings, and REST (the simulator's, no REST lag)
            env["REPAIR_TRANSACTIONAL_ID"] = "chaos-repair-0"  # the same id again: fences the killed one
        log = self.workdir / "logs" / f"{name}-{generation}.log"
        return ServiceProcess(name, [name], env, log, free_port())

    def start_all(self) -> None:
        for name in SERVICES:
            self.services[name] = self._new(name).start()

    def note(self, what: str, target: str = "", detail: str = "") -> None:
        self.actions.append(Action(time.time(), what, target, detail))

    def kill(self, name: str) -> None:
        self.note("kill", name)
        self.services[name].kill()
        self.services[name] = self._new(name).start()

    def supervise(self) -> None:
        """Restart any service that exited on its own (a crash is allowed; a loss is not)."""
        if self.stopping:
            return
        for name, service in list(self.services.items()):
            if not service.running():
                self.note("restart_after_exit", name, f"exit {service.returncode()}")
                self.services[name] = self._new(name).start()

    def stop_all(self, timeout: float = 60.0) -> dict[str, int | None]:
        self.stopping = True
        codes = {}
        for name in ("producer", "repair", "processor", "sink"):
            codes[name] = self.services[name].stop(timeout)
        return codes

    def kill_all(self) -> None:
        """Leave nothing running (a failed run included)."""
        self.stopping = True
        for service in self.services.values():
            if service.running():
                service.kill()

    def log_files(self, name: str) -> list[Path]:
        return sorted((self.workdir / "logs").glob(f"{name}-*.log"))


def service_env(
    base: dict[str, str],
    *,
    bootstrap: str,
    raw: str,
    filtered: str,
    feed: str,
    api_key: str,
    rest_url: str,
    subscriptions: str,
    clickhouse_dsn: str,
    fault_dir: Path,
) -> dict[str, str]:
    return {
        **base,
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RAW_TOPIC": raw,
        "FILTERED_TOPIC": filtered,
        "POLYGON_FEED": feed,
        "POLYGON_SECURE": "false",
        "POLYGON_API_KEY": api_key,
        "POLYGON_REST_URL": rest_url,
        "FEED_GAPS_TOPIC": "chaos-gaps",
        "GAP_STATES_TOPIC": "chaos-gap-states",
        # The simulator's REST has each second as soon as it was generated: no waiting for it to
        # catch up (the repair's REST-lag handling is tested in test_history_repair.py).
        "REPAIR_REST_LAG_SECONDS": "0",
        "REPAIR_REST_MAX_WAIT_SECONDS": "0",
        "REPAIR_MARGIN_SECONDS": "3",
        "SUBSCRIPTIONS_URI": subscriptions,
        "RECONNECT_INITIAL_SECONDS": "0.2",
        "RECONNECT_MAX_SECONDS": "2",
        "CLICKHOUSE_DSN": clickhouse_dsn,
        "SINK_BATCH_SECONDS": "0.5",
        "SINK_RETRY_MAX_SECONDS": "2",
        "TICKPIPE_FAULT_DIR": str(fault_dir),
        "LOG_LEVEL": "INFO",
    }
