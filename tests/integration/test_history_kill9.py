"""`tickpipe backfill` killed with SIGKILL three times mid-load, then resumed: every row once.

The backfill runs as its own process on its own chDB folder (as in production); the kills land
after a given number of REST requests (the simulator counts them), i.e. while pages are being
fetched and stored. The last run finishes; a fresh process then counts what ClickHouse holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.history_support import finished, session_args, truth
from tests.support import wait_for
from tickpipe_simulator.testing import SimulatorProcess

pytestmark = pytest.mark.integration

SYMBOLS = ["NVDA", "TSLA", "AAPL", "AMZN", "MSFT"]
KILL_AFTER_REQUESTS = (3, 5, 7)

COUNT = """
import json, sys
import clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
def one(sql):
    return list(client.query(sql).result_rows[0])
print(json.dumps({
    "trades": one("SELECT count(), uniqExact(symbol, timestamp, sequence, exchange, trade_id), sum(size) "
                  "FROM tickpipe.trades"),
    "quotes": one("SELECT count(), uniqExact(symbol, timestamp, sequence), sum(bid_size) "
                  "FROM tickpipe.quotes"),
    "seconds": one("SELECT count(), uniqExact(symbol, timestamp), sum(volume) FROM tickpipe.aggregates"),
    "bars": one("SELECT sum(volume), sum(trades) FROM tickpipe.ohlcv_1m"),
}))
"""


def test_kill9_three_times_then_resume_loads_every_row_once(tmp_path: Path) -> None:
    folder = tmp_path / "chdb"
    with SimulatorProcess(tmp_path, *session_args(seconds=240, rate=4000)) as sim:
        stats = finished(sim)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "TICKPIPE_HOME": str(tmp_path / ".tickpipe"),
            "POLYGON_API_KEY": sim.api_key,
            "POLYGON_REST_URL": sim.base_url,
            "CLICKHOUSE_DSN": f"chdb://{folder}",
            "BACKFILL_CONCURRENCY": "2",
            "LOG_FORMAT": "json",
        }
        command = [
            sys.executable,
            "-m",
            "tickpipe_cli",
            "backfill",
            "--from",
            "2024-03-07",
            "--to",
            "2024-03-07",
        ]
        command += [
            "--symbols",
            ",".join(SYMBOLS),
            "--datasets",
            "trades,quotes,second_aggs",
            "--progress",
            "json",
        ]

        def requests() -> int:
            return int(sim.stats()["rest"]["requests"])

        log = tmp_path / "backfill.log"
        for after in KILL_AFTER_REQUESTS:
            start = requests()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                target = start + after

                def far_enough(p: subprocess.Popen[bytes] = proc, n: int = target) -> bool:
                    return requests() >= n or p.poll() is not None

                wait_for(far_enough, "REST requests", 120)
                assert proc.poll() is None, f"the backfill ended before the kill:\n{log.read_text()[-2000:]}"
                os.killpg(proc.pid, signal.SIGKILL)
            finally:
                proc.wait(30)
            assert proc.returncode == -signal.SIGKILL

        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["chunks_skipped"] > 0, (
            "the killed runs completed some chunks: they are not fetched again"
        )
        assert report["chunks"] == {"done": report["chunks_planned"] - report["chunks_skipped"]}

    counted = subprocess.run(
        [sys.executable, "-c", COUNT, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert counted.returncode == 0, counted.stderr[-2000:]
    got: dict[str, Any] = json.loads(counted.stdout)
    expected = truth(stats, SYMBOLS)
    assert got["trades"][:2] == [len(expected.trades)] * 2
    assert got["trades"][2] == pytest.approx(sum(t[6] for t in expected.trades))
    assert got["quotes"][:2] == [len(expected.quotes)] * 2
    assert got["quotes"][2] == pytest.approx(sum(q[4] for q in expected.quotes))
    assert got["seconds"][:2] == [len(expected.seconds)] * 2
    assert got["seconds"][2] == pytest.approx(sum(s[6] for s in expected.seconds))
    assert got["bars"] == [pytest.approx(got["seconds"][2]), len(expected.trades)]
