"""moto's standalone server: a real S3 HTTP API on loopback, reached through AWS_ENDPOINT_URL."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tickpipe.process import free_port, spawn, stop_pid, wait_until

# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1) as response:  # noqa: S310 - loopback http
            return int(response.status) < 500
    except Exception:
        return False


@dataclass
class MotoS3Server:
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "s3.log"

    def start(self, timeout: float = 30.0) -> MotoS3Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = spawn(command, self.log_file)
        wait_until(
            lambda: s3_ready(self.endpoint),
            f"moto S3 server on {self.endpoint}",
            timeout,
            process=self.process,
            log_file=self.log_file,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process.pid, 10)
            self.process.wait(timeout=5)
            self.process = None
