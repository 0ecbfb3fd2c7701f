"""docker-compose.yml: valid for docker-compose itself, and converging by its own declarations.

`docker-compose config -q` (docker-compose 1.29 from PyPI, in .tools/compose: `make tools`) is the
authority on the file format and rejects unknown keys and depends_on conditions without a Docker
engine. The checks after it are the ones no schema knows: that every dependency can become healthy
or complete, that the services get the configuration contract of docs/architecture.md, and that the
simulator/live switch works.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.tools import find_tool
from tests.unit.test_docker_images import IMAGES, instructions
from tickpipe.contract import FEED_GAPS_TOPIC, GAP_STATES_TOPIC, dlq_topic

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICE_PORTS = {"producer": 9101, "processor": 9102, "sink": 9103}
# Bind-mounted files that other areas of the project provide (issue 5 writes the example rules).
PROVIDED_ELSEWHERE = {"processor/filter-rules.example.yaml"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _config(
    *args: str, env: dict[str, str] | None = None, file: Path = COMPOSE
) -> subprocess.CompletedProcess[str]:
    tool = find_tool("docker-compose", "DOCKER_COMPOSE", venv="compose")
    command = [tool, "--project-directory", str(ROOT), "-f", str(file), *args, "config"]
    return subprocess.run(command, capture_output=True, text=True, env=env or {}, timeout=120, check=False)


def test_docker_compose_accepts_the_file() -> None:
    result = _config()
    assert result.returncode == 0, result.stderr
    assert "services:" in result.stdout


def test_docker_compose_would_reject_a_broken_file(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: an unknown depends_on condition fails it."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("service_completed_successfully", "service_finished", 1))
    result = _config(file=broken)
    assert result.returncode != 0
    assert "service_finished" in result.stderr


def test_live_switch_points_the_producer_at_polygon() -> None:
    live = _config("--env-file", str(ROOT / "deploy/compose/live.env"), env={"POLYGON_API_KEY": "k-test"})
    assert live.returncode == 0, live.stderr
    producer = yaml.safe_load(live.stdout)["services"]["producer"]["environment"]
    assert producer["POLYGON_FEED"] == "socket.polygon.io"
    assert str(producer["POLYGON_SECURE"]).lower() == "true"
    assert producer["POLYGON_API_KEY"] == "k-test"
    for name in ("repair", "history-daily"):  # REST goes to Polygon too, with the same key
        env = yaml.safe_load(live.stdout)["services"][name]["environment"]
        assert env["POLYGON_REST_URL"] == "https://api.polygon.io"
        assert env["POLYGON_API_KEY"] == "k-test"


def test_every_dependency_can_be_satisfied(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert _has_healthcheck(services[target]), (
                    f"{name} waits for {target} to be healthy: it has no check"
                )
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", (
                    f"{target} is a one-shot job: restart must be no"
                )


def _has_healthcheck(service: dict[str, Any]) -> bool:
    if "healthcheck" in service:
        return not service["healthcheck"].get("disable", False)
    dockerfile = (service.get("build") or {}).get("dockerfile")
    if not isinstance(dockerfile, str):
        return False
    return any(keyword == "HEALTHCHECK" for keyword, _ in instructions(dockerfile))


def test_tickpipe_containers_are_hardened(compose: dict[str, Any]) -> None:
    built = {name: s for name, s in compose["services"].items() if "build" in s}
    assert {"producer", "processor", "sink", "simulator", "migrate", "s3-seed"} <= set(built)
    assert {"repair", "history-daily", "export", "web"} <= set(built)
    for name, service in built.items():
        assert service["build"]["context"] == "."
        assert service["build"]["dockerfile"] in IMAGES
        assert service.get("init") is True, f"{name}: init forwards SIGTERM"
        assert service.get("read_only") is True, f"{name}: read-only root filesystem"
        assert "/tmp" in service.get("tmpfs", []), f"{name}: /tmp must be writable"
        assert service.get("cap_drop") == ["ALL"]


def test_host_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} on every interface"


def test_services_get_the_configuration_contract(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, port in SERVICE_PORTS.items():
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert int(env["METRICS_PORT"]) == port
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"]
    producer = services["producer"]["environment"]
    for variable in (
        "POLYGON_API_KEY",
        "POLYGON_FEED",
        "POLYGON_SECURE",
        "SUBSCRIPTIONS_URI",
        "AWS_ENDPOINT_URL",
    ):
        assert variable in producer
    assert producer["SUBSCRIPTIONS_URI"].startswith("s3://tickpipe/")
    assert services["processor"]["environment"]["FILTER_RULES"].startswith("s3://tickpipe/")
    assert services["sink"]["environment"]["CLICKHOUSE_DSN"].startswith("http://tickpipe:")


def test_the_console_is_on_loopback_with_a_token_and_reads_every_stage(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert web["ports"] == ["127.0.0.1:8080:8080"]
    assert web["build"]["dockerfile"] == "deploy/web/Dockerfile"
    env = web["environment"]
    default_token = env["WEB_TOKEN"].removeprefix("${WEB_TOKEN:-").removesuffix("}")
    assert len(default_token) >= 16, "the console refuses a shorter token"
    assert env["CLICKHOUSE_DSN"].startswith("http://tickpipe:")
    for name, port in SERVICE_PORTS.items():
        assert env[f"WEB_{name.upper()}_METRICS"] == f"http://{name}:{port}/metrics"


def test_simulator_is_the_default_feed_and_accepts_the_default_key(compose: dict[str, Any]) -> None:
    services = compose["services"]
    producer = services["producer"]["environment"]
    assert producer["POLYGON_FEED"] == "${POLYGON_FEED:-simulator:8765}"
    assert producer["POLYGON_SECURE"] == "${POLYGON_SECURE:-false}"
    default_key = producer["POLYGON_API_KEY"].removeprefix("${POLYGON_API_KEY:-").removesuffix("}")
    assert f"--api-keys=${{SIMULATOR_API_KEY:-{default_key}}}" in services["simulator"]["command"]


def test_kafka_is_ready_for_transactions_and_has_every_topic(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    entries = compose["services"]["kafka-topics"]["environment"]["TOPICS"].split()
    topics = {entry.split(":", 1)[0]: entry.split(":", 1)[1] for entry in entries}
    raw, filtered = "polygon_stream_aggregates", "custom_filtered_stock_data_topic"
    gaps = {FEED_GAPS_TOPIC, GAP_STATES_TOPIC}  # the repair's input, and its states for the sink
    assert set(topics) == {raw, filtered, dlq_topic(raw), dlq_topic(filtered), *gaps}
    assert topics[filtered] == "${FILTERED_TOPIC_PARTITIONS:-1}", "one sink insert stream by default"


def test_repair_and_the_daily_jobs_run_from_their_images(compose: dict[str, Any]) -> None:
    """Issue 16 and 18: the repair service, the daily history job and the daily export, scheduled
    by their own `--at HH:MM` (no cron image: nothing to pull besides the pipeline's own)."""
    services = compose["services"]
    repair = services["repair"]
    assert repair["build"]["dockerfile"] == "deploy/history/Dockerfile"
    assert "command" not in repair, "the image's default command is `repair`"
    env = repair["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["RAW_TOPIC"] == services["producer"]["environment"]["RAW_TOPIC"]
    assert env["POLYGON_API_KEY"] == services["producer"]["environment"]["POLYGON_API_KEY"]
    assert env["POLYGON_REST_URL"] == "${POLYGON_REST_URL:-http://simulator:8765}"
    assert env["CLICKHOUSE_DSN"].startswith("http://tickpipe:")  # feed_gaps
    assert int(env["METRICS_PORT"]) == 9104
    assert repair["ports"] == ["127.0.0.1:9104:9104"]
    daily = services["history-daily"]
    assert daily["build"]["dockerfile"] == "deploy/history/Dockerfile"
    assert daily["command"] == ["daily", "--at", "${HISTORY_DAILY_AT:-06:00}"]
    assert daily["environment"]["CLICKHOUSE_DSN"] == env["CLICKHOUSE_DSN"]
    export = services["export"]
    assert export["build"]["dockerfile"] == "deploy/research/Dockerfile"
    assert export["command"] == ["export", "--at", "${EXPORT_AT:-06:30}"]
    assert export["environment"]["EXPORT_URI"].startswith("${EXPORT_URI:-s3://tickpipe/")
    assert export["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    for job in (daily, export):
        assert job["healthcheck"] == {"disable": True}, "a sleeping job serves no health endpoint"
        assert job["restart"] == "unless-stopped"
        assert "ports" not in job
    for name, service in services.items():
        image = str(service.get("image", ""))
        assert "cron" not in image, f"{name}: a scheduler image"
        assert "ofelia" not in image, f"{name}: a scheduler image"


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                path = source.removeprefix("./")
                if path not in PROVIDED_ELSEWHERE:
                    assert (ROOT / path).exists(), f"{name} mounts {path}, which does not exist"
