"""Session fixtures giving tests the real parts.

Each part is, in order of preference: an existing service named by its variable
(KAFKA_BOOTSTRAP_SERVERS, AWS_ENDPOINT_URL, CLICKHOUSE_DSN), a testcontainers container where a
Docker engine answers, else the local stack started by tickpipe's own code (a Kafka broker from the
official jars, moto's S3 server, chDB in-process). Names are random per test.

With CI=true a part that cannot start fails the run, naming the part and the reason; elsewhere the
tests that need it are skipped with that reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import unavailable
from tickpipe.process import StartError
from tickpipe_local.kafka_broker import KafkaBroker
from tickpipe_local.s3_server import LOCAL_AWS_ENV, MotoS3Server


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep tests away from a developer's `.tickpipe/local.env` and running demo."""
    home = tmp_path_factory.mktemp("tickpipe-home")
    previous = os.environ.get("TICKPIPE_HOME")
    os.environ["TICKPIPE_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("TICKPIPE_HOME", None)
    else:
        os.environ["TICKPIPE_HOME"] = previous


# --- Kafka ---------------------------------------------------------------------------------------


@dataclass
class KafkaHandle:
    bootstrap: str
    broker: KafkaBroker | None = None  # set when this run started the broker (it can restart it)

    def config(self, **extra: str) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap, **extra}


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield KafkaHandle(existing)
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield KafkaHandle(container.get_bootstrap_server())
        return
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except (StartError, OSError) as exc:
        unavailable("Kafka broker", str(exc))
    yield KafkaHandle(broker.bootstrap, broker)
    broker.stop()


@pytest.fixture
def new_topic(kafka: KafkaHandle) -> Callable[..., str]:
    """Create a topic with a random name: `new_topic()` or `new_topic("raw", partitions=8)`."""
    from tickpipe.kafka import ensure_topics

    def create(prefix: str = "t", partitions: int = 4) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        ensure_topics(kafka.config(), [name], partitions=partitions)
        return name

    return create


# --- S3 ------------------------------------------------------------------------------------------


@dataclass
class S3Handle:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=os.environ.get("AWS_DEFAULT_REGION", LOCAL_AWS_ENV["AWS_DEFAULT_REGION"]),
        )

    def env(self) -> dict[str, str]:
        """Variables a subprocess needs to reach this S3."""
        return {**LOCAL_AWS_ENV, **_aws_from_environ(), "AWS_ENDPOINT_URL": self.endpoint}


def _aws_from_environ() -> dict[str, str]:
    return {key: os.environ[key] for key in LOCAL_AWS_ENV if key in os.environ}


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Handle]:
    existing = os.environ.get("AWS_ENDPOINT_URL")
    if existing:
        yield S3Handle(existing)
        return
    for key, value in LOCAL_AWS_ENV.items():
        os.environ.setdefault(key, value)
    server = MotoS3Server(tmp_path_factory.mktemp("s3"))
    try:
        server.start()
    except (StartError, OSError) as exc:
        unavailable("moto S3 server", str(exc))
    yield S3Handle(server.endpoint)
    server.stop()


@pytest.fixture
def bucket(s3: S3Handle) -> str:
    name = f"tp-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


# --- ClickHouse ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """chDB allows one data folder per process, so this run's in-process tests share one folder."""
    return os.environ.get("CLICKHOUSE_DSN") or f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_dsn: str) -> Iterator[Any]:
    import clickhouse_connect

    try:
        client = clickhouse_connect.get_client(dsn=clickhouse_dsn)
        client.query("SELECT 1")
    except Exception as exc:
        unavailable("ClickHouse (chDB)", f"{type(exc).__name__}: {exc}")
    yield client
    client.close()


@pytest.fixture
def ch_database(clickhouse: Any) -> Iterator[str]:
    name = f"tp_{uuid.uuid4().hex[:12]}"
    clickhouse.command(f"CREATE DATABASE {name}")
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
