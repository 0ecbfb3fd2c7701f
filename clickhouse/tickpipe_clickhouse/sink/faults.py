"""A test hook at the writer boundary: make ClickHouse writes fail while a file exists.

Off unless `TICKPIPE_FAULT_DIR` is set. The chaos suite creates `<dir>/clickhouse-writes-fail` to
simulate a ClickHouse outage (the embedded engine cannot be stopped from outside) and removes it
to end the outage; every insert in between raises TransientWriteError, exactly as a refused
connection would, so the sink's retry path is the one exercised.
"""

from __future__ import annotations

import os
from pathlib import Path

from tickpipe_clickhouse.sink.batching import Batch
from tickpipe_clickhouse.sink.writer import Rejected, TransientWriteError, Writer

FAULT_DIR_VARIABLE = "TICKPIPE_FAULT_DIR"
CLICKHOUSE_DOWN = "clickhouse-writes-fail"


class FaultInjectingWriter:
    def __init__(self, inner: Writer, fault_dir: Path):
        self.inner = inner
        self.flag = fault_dir / CLICKHOUSE_DOWN

    def write(self, batch: Batch) -> list[Rejected]:
        if self.flag.exists():
            raise TransientWriteError(f"injected fault: ClickHouse writes fail while {self.flag} exists")
        return self.inner.write(batch)


def with_faults(writer: Writer) -> Writer:
    """`writer`, wrapped in the fault hook when TICKPIPE_FAULT_DIR is set."""
    fault_dir = os.environ.get(FAULT_DIR_VARIABLE)
    return FaultInjectingWriter(writer, Path(fault_dir)) if fault_dir else writer
