"""deploy/compose/seed_s3.py against a real S3 API (moto's server), run as compose runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import S3Handle

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "seed_s3.py"


def _seed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ.get("PATH", ""), **env}
    return subprocess.run(
        [sys.executable, str(SEED), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_seeds_once_and_never_overwrites_an_edit(s3: S3Handle, tmp_path: Path) -> None:
    csv = tmp_path / "subscriptions.csv"
    csv.write_text("channel,symbol\nA,AAPL\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("keep: [A]\n")
    bucket = f"tp-seed-{uuid.uuid4().hex[:10]}"
    uploads = [f"subscriptions.csv={csv}", f"filter-rules.yaml={rules}"]

    first = _seed(s3.env(), bucket, *uploads)
    assert first.returncode == 0, first.stderr
    client = s3.client()
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert client.get_object(Bucket=bucket, Key="subscriptions.csv")["Body"].read() == csv.read_bytes()

    client.put_object(
        Bucket=bucket, Key="subscriptions.csv", Body=b"channel,symbol\nT,MSFT\n"
    )  # the user edits
    again = _seed(s3.env(), bucket, *uploads)
    assert again.returncode == 0, again.stderr
    assert "kept existing ['filter-rules.yaml', 'subscriptions.csv']" in again.stdout
    assert (
        client.get_object(Bucket=bucket, Key="subscriptions.csv")["Body"].read()
        == b"channel,symbol\nT,MSFT\n"
    )
    versions = client.list_object_versions(Bucket=bucket, Prefix="subscriptions.csv")["Versions"]
    assert len(versions) == 2, "the example and the edit: the edit can be rolled back"


def test_missing_file_is_named_and_nothing_is_created(s3: S3Handle, tmp_path: Path) -> None:
    bucket = f"tp-seed-{uuid.uuid4().hex[:10]}"
    result = _seed(s3.env(), bucket, f"filter-rules.yaml={tmp_path / 'absent.yaml'}")
    assert result.returncode == 2
    assert "filter-rules.yaml" in result.stderr
    assert "absent.yaml" in result.stderr
    names = {b["Name"] for b in s3.client().list_buckets()["Buckets"]}
    assert bucket not in names


def test_unreachable_s3_fails_at_the_deadline(s3: S3Handle, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {**s3.env(), "AWS_ENDPOINT_URL": endpoint, "SEED_TIMEOUT_SECONDS": "2"}
        csv = tmp_path / "s.csv"
        csv.write_text("channel,symbol\n")
        result = _seed(env, "tp-unreachable", f"subscriptions.csv={csv}")
    assert result.returncode == 1
    assert "did not answer" in result.stderr
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout
