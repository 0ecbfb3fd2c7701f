"""Read an S3 object's body only when it is small enough: the size is checked before the read.

`get_object` answers with the object's ContentLength before any of its body is read; a larger
object is refused without reading it (a multi-GB object must not be pulled into memory), and the
read itself stops one byte past the limit in case the length was not given or not true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TooLarge(ValueError):
    """The object is larger than the caller's limit; the message gives both sizes."""


def read_body(response: Mapping[str, Any], limit: int, what: str) -> bytes:
    """The body of a `get_object` response of at most `limit` bytes, else `TooLarge` (body unread)."""
    body = response["Body"]
    length = response.get("ContentLength")
    try:
        if isinstance(length, int) and length > limit:
            raise TooLarge(f"{what} is {length} bytes; the limit is {limit}")
        content = bytes(body.read(limit + 1))
        if len(content) > limit:
            raise TooLarge(f"{what} is larger than {limit} bytes")
        return content
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
