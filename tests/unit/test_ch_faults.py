"""The writer-boundary fault hook: off by default, failing writes transiently while its file exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpipe_clickhouse.sink.batching import Batch
from tickpipe_clickhouse.sink.faults import (
    CLICKHOUSE_DOWN,
    FAULT_DIR_VARIABLE,
    FaultInjectingWriter,
    with_faults,
)
from tickpipe_clickhouse.sink.writer import Rejected, TransientWriteError


class CountingWriter:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, batch: Batch) -> list[Rejected]:
        self.writes += 1
        return []


def test_off_unless_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAULT_DIR_VARIABLE, raising=False)
    inner = CountingWriter()
    assert with_faults(inner) is inner


def test_writes_fail_transiently_while_the_file_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(FAULT_DIR_VARIABLE, str(tmp_path))
    inner = CountingWriter()
    writer = with_faults(inner)
    assert isinstance(writer, FaultInjectingWriter)
    batch: Batch = None  # type: ignore[assignment]  # the hook never looks at the batch
    (tmp_path / CLICKHOUSE_DOWN).touch()
    with pytest.raises(TransientWriteError, match="injected fault"):
        writer.write(batch)
    assert inner.writes == 0
    (tmp_path / CLICKHOUSE_DOWN).unlink()
    assert writer.write(batch) == []
    assert inner.writes == 1
