"""The recording format: one frame per line, spliced in unchanged, gzip or zstd by file name."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tickpipe_simulator.recording import (
    RecordingError,
    frame_line,
    header_line,
    open_recording,
    read_recording,
)

FRAME = '[{"ev":"status","status":"success","message":"subscribed to: A.*"},{"ev":"A","sym":"AAPL","v":10}]'


@pytest.mark.parametrize("name", ["session.ndjson.gz", "session.ndjson.zst", "session.ndjson"])
def test_write_then_read_gives_the_frames_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with open_recording(path, "wb") as handle:
        handle.write(header_line(feed="x/stocks"))
        handle.write(frame_line(5, FRAME))
        handle.write(frame_line(9, FRAME.encode()))
    frames = list(read_recording(path))
    assert [f.recv_ns for f in frames] == [5, 9]
    assert frames[0].events == [{"ev": "A", "sym": "AAPL", "v": 10}], "statuses are not events"
    if name.endswith((".gz", ".zst")):
        assert not path.read_bytes().startswith(b"{"), "the file is compressed"


def test_a_frame_is_embedded_byte_for_byte() -> None:
    line = frame_line(1, FRAME)
    assert line.endswith(FRAME.encode() + b"}\n")
    pretty = '[\n  {"ev": "A"}\n]'
    assert orjson.loads(frame_line(2, pretty))["frame"] == [{"ev": "A"}]
    assert frame_line(2, pretty).count(b"\n") == 1


def test_bad_lines_are_named_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(header_line() + b'{"recv_ns": 1, "frame": []}\n' + b"{oops\n")
    with pytest.raises(RecordingError, match=r"bad.ndjson:3: not JSON"):
        list(read_recording(path))
    path.write_bytes(b'{"frame": []}\n')
    with pytest.raises(RecordingError, match=r":1: expected"):
        list(read_recording(path))
