"""`tickpipe local up/status/down`: the real parts, started in the background and remembered.

State lives in `.tickpipe/` ($TICKPIPE_HOME): `state.json` (pids and ports), `local.env` (the
connection settings every other tickpipe command reads) and one log file per part. A second `up`
reuses what already runs; `down` stops what `up` started.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickpipe.paths import home, local_env_file, repo_root
from tickpipe.process import free_port, pid_alive, port_open, spawn, stop_pid, wait_until
from tickpipe_local.kafka_broker import KafkaBroker, broker_ready
from tickpipe_local.s3_server import LOCAL_AWS_ENV, MotoS3Server, s3_ready

log = logging.getLogger(__name__)

LOCAL_BUCKET = "tickpipe-local"
SUBSCRIPTIONS_KEY = "subscriptions.csv"
FILTER_RULES_KEY = "filter-rules.yaml"


@dataclass
class PartStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    log_file: Path


def _state_file() -> Path:
    return home() / "state.json"


def load_state() -> dict[str, dict[str, Any]]:
    path = _state_file()
    if not path.exists():
        return {}
    loaded: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return loaded


def _save_state(state: dict[str, dict[str, Any]]) -> None:
    home().mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(state, indent=2) + "\n")


def _running(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and pid_alive(int(entry["pid"]))  # type: ignore[index]


def simulator_available() -> bool:
    return importlib.util.find_spec("tickpipe_simulator.server") is not None


def up(with_simulator: bool = True) -> dict[str, str]:
    """Start (or reuse) Kafka, moto S3 and the simulator; write and return the connection settings."""
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    state = load_state()

    kafka = state.get("kafka")
    if _running(kafka) and broker_ready(f"127.0.0.1:{kafka['port']}"):  # type: ignore[index]
        log.info("Kafka already running (pid %s)", kafka["pid"])  # type: ignore[index]
    else:
        broker = KafkaBroker(
            root / "kafka",
            port=_reusable_port(kafka, "port"),
            controller_port=_reusable_port(kafka, "controller_port"),
        )
        broker.start()
        state["kafka"] = {
            "pid": broker.pid,
            "port": broker.port,
            "controller_port": broker.controller_port,
            "log": str(broker.log_file),
        }
        _save_state(state)

    s3 = state.get("s3")
    if _running(s3) and s3_ready(f"http://127.0.0.1:{s3['port']}"):  # type: ignore[index]
        log.info("S3 (moto) already running (pid %s)", s3["pid"])  # type: ignore[index]
    else:
        server = MotoS3Server(root / "s3", port=_reusable_port(s3, "port"))
        server.start()
        state["s3"] = {
            "pid": server.process.pid if server.process else None,
            "port": server.port,
            "log": str(server.log_file),
        }
        _save_state(state)
    _seed_bucket(f"http://127.0.0.1:{state['s3']['port']}")

    if with_simulator and simulator_available():
        sim = state.get("simulator")
        if _running(sim) and port_open("127.0.0.1", int(sim["port"])):  # type: ignore[index]
            log.info("simulator already running (pid %s)", sim["pid"])  # type: ignore[index]
        else:
            state["simulator"] = _start_simulator(root, _reusable_port(sim, "port"))
            _save_state(state)

    settings = connection_settings(state)
    write_local_env(settings)
    return settings


def _reusable_port(entry: dict[str, Any] | None, key: str) -> int:
    """The port a part used before, so local.env stays valid across restarts; else a free one."""
    if entry and key in entry and not port_open("127.0.0.1", int(entry[key])):
        return int(entry[key])
    return free_port()


def _start_simulator(root: Path, port: int) -> dict[str, Any]:
    key = "local-" + secrets.token_hex(8)
    log_file = root / "simulator.log"
    command = [sys.executable, "-m", "tickpipe_cli", "simulate", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--api-keys", key]
    env = dict(os.environ)
    env.setdefault("SIMULATOR_RATE", "2000")  # trades+quotes/s; any SIMULATOR_* variable tunes it
    process = spawn(command, log_file, env=env)
    wait_until(
        lambda: port_open("127.0.0.1", port),
        f"Polygon simulator on 127.0.0.1:{port}",
        30,
        process=process,
        log_file=log_file,
    )
    return {"pid": process.pid, "port": port, "api_key": key, "log": str(log_file)}


def _seed_bucket(endpoint: str) -> None:
    """Create the local bucket and upload the example subscriptions CSV and filter rules once."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if LOCAL_BUCKET not in existing:
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    present = {obj["Key"] for obj in s3.list_objects_v2(Bucket=LOCAL_BUCKET).get("Contents", [])}
    for key, source in (
        (SUBSCRIPTIONS_KEY, repo_root() / "producer" / "subscriptions.example.csv"),
        (FILTER_RULES_KEY, repo_root() / "processor" / "filter-rules.example.yaml"),
    ):
        if key not in present and source.exists():
            s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=source.read_bytes())


def connection_settings(state: dict[str, dict[str, Any]]) -> dict[str, str]:
    settings = {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{state['kafka']['port']}",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{state['s3']['port']}",
        **LOCAL_AWS_ENV,
        "SUBSCRIPTIONS_URI": f"s3://{LOCAL_BUCKET}/{SUBSCRIPTIONS_KEY}",
        "CLICKHOUSE_DSN": f"chdb://{home() / 'clickhouse'}",
    }
    sim = state.get("simulator")
    if sim:
        settings.update(
            {
                "POLYGON_FEED": f"127.0.0.1:{sim['port']}",
                "POLYGON_REST_URL": f"http://127.0.0.1:{sim['port']}",  # its REST API, for backfill/repair
                "POLYGON_SECURE": "false",
                "POLYGON_API_KEY": str(sim["api_key"]),
            }
        )
    return settings


def write_local_env(settings: dict[str, str]) -> Path:
    path = local_env_file()
    lines = ["# written by `tickpipe local up`; every tickpipe command reads it (environment wins)"]
    lines += [f"{key}={value}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def status() -> list[PartStatus]:
    state = load_state()
    parts: list[PartStatus] = []
    checks: dict[str, Callable[[dict[str, Any]], bool]] = {
        "kafka": lambda e: broker_ready(f"127.0.0.1:{e['port']}"),
        "s3": lambda e: s3_ready(f"http://127.0.0.1:{e['port']}"),
        "simulator": lambda e: port_open("127.0.0.1", int(e["port"])),
    }
    for name, check in checks.items():
        entry = state.get(name)
        if not entry:
            continue
        alive = _running(entry) and check(entry)
        parts.append(
            PartStatus(name, alive, entry.get("pid"), f"127.0.0.1:{entry['port']}", Path(entry["log"]))
        )
    return parts


def down(purge: bool = False) -> list[str]:
    """Stop everything `up` started (simulator first, Kafka last); `purge` also deletes the data."""
    state = load_state()
    stopped: list[str] = []
    for name in ("simulator", "s3", "kafka"):
        entry = state.pop(name, None)
        if entry and entry.get("pid"):
            if pid_alive(int(entry["pid"])):
                stop_pid(int(entry["pid"]), timeout=30)
                stopped.append(name)
            _save_state(state)
    with contextlib.suppress(FileNotFoundError):
        local_env_file().unlink()
    if purge:
        for folder in ("kafka", "s3", "clickhouse"):
            shutil.rmtree(home() / folder, ignore_errors=True)
    elif (home() / "clickhouse").is_dir():
        # The embedded ClickHouse needs no process: keep pointing at it, so that `tickpipe query`
        # and `tickpipe report` still answer after the demo has stopped everything else.
        write_local_env({"CLICKHOUSE_DSN": f"chdb://{home() / 'clickhouse'}"})
    return stopped
