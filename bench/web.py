"""The live console under load: event -> bar update at a websocket client, and the console's CPU.

`tickpipe web` runs as its own process against a Kafka broker (KAFKA_BOOTSTRAP_SERVERS, else one this
scenario starts from the jars). This process writes second aggregates in FILTERED_TOPIC's form at
`rate` events/s over `symbols` symbols (each event's `received_ns` is its send time) and holds
`clients` websocket clients, each subscribed to `per_client` symbols, half at 1 s and half at 1 m.
Latency is a client's receive time minus the `received_ns` of the newest event folded into the
update: Kafka, the console's reader, the book, the 250 ms conflation and the send, all together.

Params: rate=10000 seconds=30 clients=100 symbols=1000 per_client=10 warmup=5.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession
from confluent_kafka import Producer

from bench.common import ProcessSampler, kafka
from tickpipe.kafka import ensure_topics
from tickpipe.process import free_port
from tickpipe_demo.services import ServiceProcess

TARGET_P99_MS = 500


def _send_events(bootstrap: str, topic: str, rate: int, symbols: list[str], stop: Any, count: Any) -> None:
    """Write `rate` events/s in 10 ms slices until `stop` is set (its own process: no GIL shared
    with the clients); `count` ends as the number sent."""
    config = {"bootstrap.servers": bootstrap, "linger.ms": 5, "queue.buffering.max.messages": 500_000}
    producer = Producer(config)
    sent = [0]
    rng = random.Random(5)
    prices = {s: 100.0 + i for i, s in enumerate(symbols)}
    started = time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate) - sent[0]
        now_ms = int(time.time() * 1000)
        for _ in range(max(0, due)):
            symbol = symbols[sent[0] % len(symbols)]
            o = prices[symbol]
            c = prices[symbol] = round(o * (1 + rng.uniform(-0.001, 0.001)), 4)
            second = now_ms // 1000 * 1000
            event = {
                "ev": "A", "symbol": symbol, "start_ms": second, "end_ms": second + 1000, "open": o,
                "high": max(o, c), "low": min(o, c), "close": c, "volume": 100.0,
                "received_ns": time.time_ns(),
            }  # fmt: skip
            while True:
                try:
                    producer.produce(topic, orjson.dumps(event), symbol.encode())
                    break
                except BufferError:
                    producer.poll(0.01)
            sent[0] += 1
        producer.poll(0)
        time.sleep(0.01)  # pacing: the next 10 ms slice
    producer.flush(10)
    count.value = sent[0]


async def _clients(
    url: str, clients: int, symbols: list[str], per_client: int, seconds: float, warmup: float
) -> dict[str, Any]:
    latencies: list[float] = []
    to_send: list[float] = []  # event -> the console's send (its own share)
    updates = [0]
    rng = random.Random(9)
    measure_from = time.time() + warmup
    end = measure_from + seconds

    async def client(index: int, session: ClientSession) -> None:
        ws = await session.ws_connect(url, max_msg_size=0)
        chosen = rng.sample(symbols, per_client)
        await ws.send_json({"op": "subscribe", "symbols": chosen, "interval": "1s" if index % 2 else "1m"})
        while (left := end - time.time()) > 0:
            try:
                message = await ws.receive(timeout=left)
            except TimeoutError:
                break
            received = time.time_ns()
            data = orjson.loads(message.data)
            if data.get("type") != "bars" or received < measure_from * 1e9:
                continue
            for bar in data["bars"]:
                if bar["received_ns"]:
                    latencies.append((received - bar["received_ns"]) / 1e6)
                    to_send.append(data["sent_ms"] - bar["received_ns"] / 1e6)
                    updates[0] += 1
        await ws.close()

    async with ClientSession() as session:
        await asyncio.gather(*(client(i, session) for i in range(clients)))
    latencies.sort()
    to_send.sort()

    def pct(values: list[float], p: float) -> float | None:
        return round(values[min(len(values) - 1, int(p * len(values)))], 1) if values else None

    return {
        "updates": updates[0],
        "p50_ms": pct(latencies, 0.50),
        "p95_ms": pct(latencies, 0.95),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "event_to_console_send_p50_ms": pct(to_send, 0.50),
        "event_to_console_send_p99_ms": pct(to_send, 0.99),
    }


def _measure(bootstrap: str, workdir: Path, params: dict[str, str]) -> dict[str, Any]:
    rate = int(params.get("rate", "10000"))
    seconds = float(params.get("seconds", "30"))
    clients = int(params.get("clients", "100"))
    per_client = int(params.get("per_client", "10"))
    warmup = float(params.get("warmup", "5"))
    symbols = [f"S{i:04d}" for i in range(int(params.get("symbols", "1000")))]
    topic = f"bench-web-{os.getpid()}-{int(time.time())}"
    ensure_topics({"bootstrap.servers": bootstrap}, [topic], partitions=4)
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FILTERED_TOPIC": topic,
        "CLICKHOUSE_DSN": f"chdb://{workdir / 'chdb'}",  # no sink: the live path alone
        "WEB_PORT": str(port),
        "TICKPIPE_HOME": str(workdir / "home"),
    }
    console = ServiceProcess("web", ["web"], env, workdir / "web.log", 0).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            time.sleep(0.2)
        assert console.pid is not None
        sampler = ProcessSampler(console.pid)
        context = multiprocessing.get_context("spawn")
        stop, sent = context.Event(), context.Value("q", 0)
        writer = context.Process(target=_send_events, args=(bootstrap, topic, rate, symbols, stop, sent))
        writer.start()
        time.sleep(warmup)  # the console's reader catches up with the start of the load
        sampler.sample()
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/ws"
        result = asyncio.run(_clients(url, clients, symbols, per_client, seconds, 0))
        wall = time.monotonic() - started
        sampler.sample()
        stop.set()
        writer.join(15)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stages", timeout=5) as answer:
            stages = orjson.loads(answer.read())
    finally:
        console.stop(15)
    return {
        "rate_target": rate,
        "events_sent": int(sent.value),
        "clients": clients,
        "symbols": len(symbols),
        "per_client": per_client,
        "seconds": round(wall, 1),
        "latency_event_to_client": result,
        "console_cpu_percent": round(100 * sampler.cpu_seconds / wall, 1),
        "console_peak_rss_mb": round(sampler.peak_rss_mb, 1),
        "console_bar_updates_sent": stages["bar_updates"],
        "slow_clients_dropped": stages["slow_clients_dropped"],
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        workdir = Path(tmp)
        with kafka(workdir) as broker:
            result = _measure(broker.bootstrap, workdir, params)
    latency = result["latency_event_to_client"]
    summary = (
        f"web: {result['rate_target']:,} ev/s, {result['clients']} clients: event -> client bar update "
        f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms (target <= {TARGET_P99_MS}), "
        f"{latency['updates']:,} updates; console CPU {result['console_cpu_percent']}% of one core, "
        f"peak RSS {result['console_peak_rss_mb']} MB"
    )
    result["targets"] = {"p99_ms": TARGET_P99_MS}
    return result, summary
