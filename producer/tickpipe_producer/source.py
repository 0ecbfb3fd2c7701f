"""Where the subscriptions CSV comes from: an `s3://bucket/key` object or a local path.

`fetch()` returns the content only when it changed since the last fetch: for S3 a conditional GET
with the last ETag (the server answers 304 Not Modified), for a file its size and modification time.
An object or file larger than MAX_BYTES is refused from its size, before its content is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tickpipe.bounded_read import TooLarge, read_body

MAX_BYTES = 1_000_000  # the CSV's limit (subscriptions.MAX_BYTES), checked before it is read


@dataclass(frozen=True)
class Fetched:
    content: bytes
    version: str  # ETag, or size:mtime for a file; shown in logs


class SourceError(Exception):
    """The CSV could not be read (missing object, no permission, network). The message says where."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if parts.scheme != "s3" or not bucket or not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


class SubscriptionSource:
    """Reads one CSV location, remembering the version it last returned."""

    def __init__(self, uri: str, endpoint_url: str | None = None, s3_client: Any = None):
        self.uri = uri
        self._version: str | None = None
        self._s3 = s3_client
        self._endpoint_url = endpoint_url
        self._bucket_key = parse_s3_uri(uri) if uri.startswith("s3://") else None

    def fetch(self, force: bool = False) -> Fetched | None:
        """The content if it changed since the last call (or `force`), else None."""
        if self._bucket_key is None:
            return self._fetch_file(force)
        return self._fetch_s3(force)

    def _fetch_file(self, force: bool) -> Fetched | None:
        path = Path(self.uri)
        try:
            stat = path.stat()
            version = f"{stat.st_size}:{stat.st_mtime_ns}"
            if not force and version == self._version:
                return None
            if stat.st_size > MAX_BYTES:
                raise SourceError(
                    f"cannot read {self.uri}: it is {stat.st_size} bytes; the limit is {MAX_BYTES}"
                )
            content = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {self.uri}: {exc.strerror or exc}") from None
        self._version = version
        return Fetched(content, version)

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client(
                "s3", endpoint_url=self._endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
            )
        return self._s3

    def _fetch_s3(self, force: bool) -> Fetched | None:
        from botocore.exceptions import BotoCoreError, ClientError

        assert self._bucket_key is not None
        bucket, key = self._bucket_key
        request: dict[str, str] = {"Bucket": bucket, "Key": key}
        if self._version and not force:
            request["IfNoneMatch"] = self._version
        try:
            response = self._client().get_object(**request)
            content = read_body(response, MAX_BYTES, self.uri)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("304", "NotModified") or status == 304:
                return None
            detail = exc.response.get("Error", {}).get("Message", "")
            raise SourceError(f"cannot read {self.uri}: {code or status} {detail}".rstrip()) from None
        except BotoCoreError as exc:
            raise SourceError(f"cannot read {self.uri}: {exc}") from None
        except TooLarge as exc:
            raise SourceError(f"cannot read {exc}") from None
        version = str(response.get("ETag", ""))
        if not force and version and version == self._version:
            return None
        self._version = version
        return Fetched(content, version)
