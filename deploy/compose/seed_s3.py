"""Create the compose stack's S3 bucket and put the example files in it, once.

docker-compose runs this in the producer image (boto3 is already there) against MinIO, before the
producer and processor start. It is idempotent, and it never overwrites an object that exists: the
CSV in the bucket is the user's live configuration, which they edit (docs/deploy.md), and
`docker compose up` after an edit must not put the example back. Versioning is switched on so a bad
edit can be rolled back, exactly as on AWS.

    python seed_s3.py BUCKET KEY=FILE [KEY=FILE ...]

Endpoint and credentials come from the environment as boto3 reads them (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, ...). MinIO may still be starting: S3 is retried until SEED_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_MISSING = ("404", "NoSuchKey", "NotFound")


class SeedError(Exception):
    """A problem the user must fix (a missing file, a bad argument); the message says which."""


def parse_uploads(pairs: list[str]) -> dict[str, Path]:
    """["subscriptions.csv=/seed/subscriptions.csv"] -> {"subscriptions.csv": Path(...)}, checked."""
    uploads: dict[str, Path] = {}
    for pair in pairs:
        key, sep, file = pair.partition("=")
        if not sep or not key or not file:
            raise SeedError(f"expected KEY=FILE, got {pair!r}")
        path = Path(file)
        if not path.is_file():
            raise SeedError(f"{key}: file {file} does not exist (is it mounted into the container?)")
        uploads[key] = path
    return uploads


def seed(s3: Any, bucket: str, uploads: dict[str, Path]) -> list[str]:
    """Bucket (versioned) plus each key that is not there yet; returns the keys uploaded."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in _MISSING:
            raise
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    uploaded = []
    for key, path in uploads.items():
        try:
            s3.head_object(Bucket=bucket, Key=key)
            continue  # the user's copy wins
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _MISSING:
                raise
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        uploaded.append(key)
    return uploaded


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    bucket = argv[1]
    try:
        uploads = parse_uploads(argv[2:])
    except SeedError as exc:
        print(f"seed_s3: {exc}", file=sys.stderr)
        return 2
    s3 = boto3.client("s3")
    deadline = time.monotonic() + float(os.environ.get("SEED_TIMEOUT_SECONDS", "60"))
    while True:
        try:
            uploaded = seed(s3, bucket, uploads)
            break
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                print(f"seed_s3: S3 at {s3.meta.endpoint_url} did not answer: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)  # MinIO is starting; retried until the deadline above
    kept = sorted(set(uploads) - set(uploaded))
    print(f"seed_s3: s3://{bucket} ready; uploaded {uploaded or 'nothing'}; kept existing {kept or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
