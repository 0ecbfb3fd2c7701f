"""The recording format: compressed NDJSON, one websocket frame per line, with its receive time.

    {"tickpipe_recording": 1, "feed": "127.0.0.1:8765/stocks", "subscriptions": ["A.*"], ...}
    {"recv_ns": 1732406400123456789, "frame": [{"ev":"A","sym":"AAPL",...}, ...]}

The first line is a header; each further line embeds the frame exactly as it arrived (its JSON
text spliced in, not re-encoded). The file name picks the compression: `.gz` gzip, `.zst` or
`.zstd` zstandard, anything else plain text.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

FORMAT_VERSION = 1


def open_recording(path: Path, mode: Literal["rb", "wb"]) -> IO[bytes]:
    """Open for reading or writing bytes, compressed as the file name says."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, mode))
    if suffix in (".zst", ".zstd"):
        return cast(IO[bytes], zstd.open(path, mode))
    return path.open(mode)


def header_line(**fields: Any) -> bytes:
    return orjson.dumps({"tickpipe_recording": FORMAT_VERSION, **fields}) + b"\n"


def frame_line(recv_ns: int, frame: str | bytes) -> bytes:
    raw = frame.encode() if isinstance(frame, str) else frame
    if b"\n" in raw or b"\r" in raw:  # pretty-printed JSON: re-encode onto one line
        raw = orjson.dumps(orjson.loads(raw))
    return b'{"recv_ns":%d,"frame":%s}\n' % (recv_ns, raw)


@dataclass(frozen=True)
class RecordedFrame:
    recv_ns: int
    events: list[dict[str, Any]]  # the frame's events, statuses left out


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file and line."""


def read_recording(path: Path) -> Iterator[RecordedFrame]:
    """The recorded frames in file order; a bad line raises RecordingError naming it."""
    with open_recording(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise RecordingError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(entry, dict):
                raise RecordingError(f"{path}:{number}: expected an object per line")
            if "tickpipe_recording" in entry:
                continue
            frame, recv_ns = entry.get("frame"), entry.get("recv_ns")
            if not isinstance(recv_ns, int) or not isinstance(frame, list):
                raise RecordingError(f'{path}:{number}: expected {{"recv_ns": int, "frame": [...]}}')
            events = [event for event in frame if isinstance(event, dict) and event.get("ev") != "status"]
            yield RecordedFrame(recv_ns, events)
