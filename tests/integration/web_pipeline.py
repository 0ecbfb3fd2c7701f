"""A running pipeline for the console's tests: processor, sink and `tickpipe web` as real processes.

Raw Polygon second aggregates (`A`) go into RAW_TOPIC; the processor (exactly once) writes
FILTERED_TOPIC; the sink loads chDB; the console reads FILTERED_TOPIC and the sink's query endpoint.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from tests.support import wait_for
from tickpipe.process import free_port
from tickpipe_demo.services import ServiceProcess


def raw_second(symbol: str, second: int, o: float, c: float, volume: int) -> dict[str, Any]:
    """A Polygon `A` event (stock second aggregate), as the producer writes it to RAW_TOPIC."""
    return {
        "ev": "A", "sym": symbol, "v": volume, "av": volume, "op": o, "vw": round((o + c) / 2, 4),
        "o": o, "c": c, "h": round(max(o, c) + 0.01, 2), "l": round(min(o, c) - 0.01, 2),
        "a": o, "z": 10, "s": second * 1000, "e": second * 1000 + 1000,
    }  # fmt: skip


@dataclass
class Feed:
    """Writes raw events; `run_live` keeps writing the current second of each symbol until stopped."""

    bootstrap: str
    topic: str
    symbols: tuple[str, ...]
    prices: dict[str, float] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    paused: threading.Lock = field(default_factory=threading.Lock)  # held: the live loop waits
    sent: int = 0

    def __post_init__(self) -> None:
        self.producer = Producer(
            {"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True}
        )
        self.rng = random.Random(11)
        self.prices = {symbol: 100.0 + 50 * i for i, symbol in enumerate(self.symbols)}

    def send(self, symbol: str, second: int, close: float | None = None) -> dict[str, Any]:
        o = self.prices[symbol]
        c = close if close is not None else round(o * (1 + self.rng.uniform(-0.002, 0.002)), 2)
        self.prices[symbol] = c
        event = raw_second(symbol, second, o, c, self.rng.randint(100, 900))
        headers: list[tuple[str, str | bytes | None]] = [
            ("tp.received_ns", str(time.time_ns()).encode()),
            ("tp.feed", b"127.0.0.1/stocks"),
        ]
        self.producer.produce(self.topic, orjson.dumps(event), symbol.encode(), headers=headers)
        self.producer.poll(0)
        self.sent += 1
        return event

    def history(self, start: int, end: int) -> None:
        for second in range(start, end):
            for symbol in self.symbols:
                self.send(symbol, second)
        assert self.producer.flush(30) == 0

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def run_live(self, every: float = 0.2) -> threading.Thread:
        def loop() -> None:
            while not self.stopping.wait(every):
                with self.paused:
                    for symbol in self.symbols:
                        self.send(symbol, int(time.time()))
                    self.producer.flush(5)

        thread = threading.Thread(target=loop, name="live-feed", daemon=True)
        thread.start()
        return thread


@dataclass
class WebPipeline:
    workdir: Path
    env: dict[str, str]
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    web_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def migrate(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "tickpipe_cli", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]

    def start(self, name: str) -> ServiceProcess:
        if name == "web":
            self.web_port = self.web_port or free_port()
            env = {
                **self.env,
                "WEB_PORT": str(self.web_port),
                **{f"WEB_{n.upper()}_METRICS": s.metrics_url for n, s in self.services.items() if n != "web"},
            }
            service = ServiceProcess("web", ["web"], env, self.workdir / "web.log", 0).start()
            wait_for(
                lambda: service_answers(self.url + "healthz") or not service.running(), "the console", 60
            )
            assert service.running(), service.tail()
        else:
            log = self.workdir / f"{name}-{len(list(self.workdir.glob(f'{name}-*.log')))}.log"
            before = self.services.get(name)  # a restart keeps its metrics port, as a task's would
            port = before.metrics_port if before else free_port()
            service = ServiceProcess(name, [name], self.env, log, port).start()
            wait_for(
                lambda: service_answers(service.metrics_url) or not service.running(),
                f"the {name}'s metrics",
                90,
            )
            assert service.running(), service.tail()
        self.services[name] = service
        return service

    def stop_all(self) -> None:
        for service in self.services.values():
            if service.running():
                service.stop(20)


def service_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
            return True
    except OSError:
        return False


def pipeline_env(bootstrap: str, raw: str, filtered: str, folder: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(home)),
        "TICKPIPE_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RAW_TOPIC": raw,
        "FILTERED_TOPIC": filtered,
        "CLICKHOUSE_DSN": f"chdb://{folder}",
        "CLICKHOUSE_DATABASE": "tickpipe",
        "PROCESSOR_GROUP_ID": f"processor-{raw}",
        "SINK_GROUP_ID": f"sink-{raw}",
        "SINK_BATCH_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
