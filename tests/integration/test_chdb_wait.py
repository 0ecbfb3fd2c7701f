"""A chDB folder held by a short-lived reader is waited for (with a log line), not a reason to exit.

Real chDB in separate processes (a folder can be opened by one process at a time): a holder opens the
folder and keeps it until told to go; a second process opens it as the sink does
(`connect(..., wait_seconds=...)`), logs that it waits, and opens the folder once the holder exits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import wait_for

HOLDER = """
import sys, pathlib
from tickpipe_clickhouse.connect import connect
client = connect("chdb://" + sys.argv[1])
client.query("SELECT 1")
print("holding", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
"""
OPENER = """
import logging, sys
from tickpipe_clickhouse.connect import ClickHouseUnavailable, connect
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
try:
    client = connect("chdb://" + sys.argv[1], wait_seconds=float(sys.argv[2]))
except ClickHouseUnavailable as exc:
    print("unavailable:", exc, flush=True)
    raise SystemExit(3)
print("opened", client.query("SELECT 41 + 1").result_rows[0][0], flush=True)
"""


def _start(code: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _lines(process: subprocess.Popen[str], into: list[str]) -> None:
    import threading

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            into.append(line.strip())

    threading.Thread(target=pump, daemon=True).start()


def test_the_sink_connection_waits_for_a_held_chdb_folder_and_opens_it_when_freed(tmp_path: Path) -> None:
    folder = tmp_path / "ch"
    holder = _start(HOLDER, str(folder), stdin=subprocess.PIPE)
    held: list[str] = []
    _lines(holder, held)
    opener = None
    try:
        wait_for(lambda: "holding" in held, "the holder to open the folder", timeout=60)
        refused = subprocess.run(
            [sys.executable, "-c", OPENER, str(folder), "0"], capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 3, "without a wait a held folder is refused at once"
        assert "another process holds it" in refused.stdout

        opener = _start(OPENER, str(folder), "120")
        out: list[str] = []
        _lines(opener, out)
        wait_for(lambda: any("held by another process" in line for line in out), "the wait log line", 60)
        assert opener.poll() is None, f"the opener gave up while the folder was held: {out}"
        assert holder.stdin is not None
        holder.stdin.close()  # the short-lived reader goes away
        holder.wait(60)
        assert opener.wait(120) == 0, out
        assert "opened 42" in out
    finally:
        for process in (holder, opener):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
