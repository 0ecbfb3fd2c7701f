"""A real single-node Apache Kafka broker (KRaft), run from the official jars.

The jars come from Maven Central through `mvn dependency:copy-dependencies`, once, into
`~/.cache/tickpipe/kafka-<version>/lib` (outside git). Java 17 runs `kafka.Kafka` directly, the same
class `bin/kafka-server-start.sh` runs in the Apache tarball.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tickpipe.paths import cache_dir
from tickpipe.process import StartError, free_port, port_open, spawn, stop_pid, wait_until

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.24.3"  # the log4j2 line Kafka 4.1 is built with; provides the slf4j binding

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.tickpipe</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = org.apache.kafka.server
logger.server.level = INFO
"""


def jars_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib"


def fetch_jars() -> Path:
    """Download the broker's jars with Maven unless the cache has them; returns the lib folder."""
    lib = jars_dir()
    done = lib.parent / ".complete"
    if done.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with (lib.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs fetching at once share one download
        if done.exists():
            return lib
        if shutil.which("mvn") is None:
            raise StartError(
                "Kafka: Maven (mvn) is not on PATH; it fetches the Kafka jars from Maven Central"
            )
        log.info("fetching Kafka %s jars from Maven Central into %s", KAFKA_VERSION, lib)
        with tempfile.TemporaryDirectory() as work:
            pom = Path(work) / "pom.xml"
            pom.write_text(_POM)
            staging = Path(work) / "lib"
            result = subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise StartError(
                    f"Kafka: mvn could not fetch the jars:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
                )
            if lib.exists():
                shutil.rmtree(lib)
            shutil.move(str(staging), lib)
        done.write_text(KAFKA_VERSION + "\n")
    return lib


def _cluster_id() -> str:
    """A random KRaft cluster id (base64 of a UUID) that cannot be mistaken for an option ("-...")."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def java_executable() -> str:
    """The JDK the local broker runs on: JAVA_HOME's, else `java` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StartError("Kafka: Java 17+ (java) is not on PATH and JAVA_HOME is not set")
    return found


JIT_MODES = ("full", "c1")


@dataclass
class KafkaBroker:
    """One KRaft node acting as broker and controller, with its data in `workdir`."""

    workdir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = field(default_factory=lambda: os.environ.get("TICKPIPE_KAFKA_HEAP", "1g"))
    # "full": the JVM's tiered compilers as usual; "c1": the quick compiler only. The optimising
    # compiler (C2) is a broker's largest CPU cost for its first minutes and pays back after that
    # (docs/benchmarks.md: "The local broker's CPU"): c1 suits a broker that lives a few minutes.
    jit: str = field(default_factory=lambda: os.environ.get("TICKPIPE_KAFKA_JIT", "full"))
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if self.jit not in JIT_MODES:
            modes = ", ".join(JIT_MODES)
            raise StartError(f"Kafka: TICKPIPE_KAFKA_JIT must be one of {modes}, not {self.jit!r}")
        self.workdir = self.workdir.resolve()
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "kafka.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        config = self.workdir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=4",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=8",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=8",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=3",
                    "num.io.threads=4",
                    "message.max.bytes=10485760",
                    "log.retention.hours=24",
                    "",
                ]
            )
        )
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        return config

    def _format_storage(self, lib: Path, config: Path) -> None:
        if (self.workdir / "data" / "meta.properties").exists():
            return
        cluster_id = _cluster_id()
        result = subprocess.run(
            [
                java_executable(),
                "-cp",
                f"{lib}/*",
                "-Dlog4j2.configurationFile=" + str(self.workdir / "log4j2.properties"),
                f"-Dkafka.logs.file={self.log_file}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StartError(f"Kafka: storage format failed:\n{result.stdout}{result.stderr}")

    def jvm_options(self) -> list[str]:
        return [
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            *(["-XX:TieredStopAtLevel=1"] if self.jit == "c1" else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.file={self.log_file}",
        ]

    def start(self, timeout: float = 60.0) -> KafkaBroker:
        """Start the broker and wait until it answers metadata requests."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        lib = fetch_jars()
        config = self._write_config()
        self._format_storage(lib, config)
        self.process = spawn(
            [java_executable(), *self.jvm_options(), "-cp", f"{lib}/*", "kafka.Kafka", str(config)],
            self.workdir / "kafka.stdout",
        )
        wait_until(
            lambda: broker_ready(self.bootstrap),
            f"Kafka broker on {self.bootstrap}",
            timeout,
            process=self.process,
            log_file=self.log_file,
        )
        log.info("Kafka %s ready on %s (pid %s)", KAFKA_VERSION, self.bootstrap, self.pid)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None:
            stop_pid(self.process.pid, timeout)
            self.process.wait(timeout=5)
            self.process = None

    def restart(self, timeout: float = 60.0) -> None:
        """Stop and start again on the same ports and data (chaos tests)."""
        self.stop()
        self.start(timeout)


def broker_ready(bootstrap: str, timeout: float = 1.0) -> bool:
    """True when the broker answers a metadata request and lists at least one broker."""
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return False  # no listener yet: skip librdkafka, which would log a connection error per try
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)
