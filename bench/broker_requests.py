"""Requests a running Kafka broker serves per second, by type, over a window.

    python -m bench.broker_requests PID [--seconds 60]

Reads the broker's own request counters (JMX `RequestsPerSec` counts, through
bench/BrokerRequests.java and the JDK's attach API) at the start and the end of the window and
prints the rate of each request type. Run it beside a benchmark (`bench soak`, `bench e2e`) against
the broker's JVM (`pgrep -f kafka.Kafka`): what the pipeline asks of the broker per event (produce
requests, fetches, the seven requests of each transaction) is what its request threads' CPU pays
for. `FetchConsumer` and `Fetch` count the same consumer fetches (two meters).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from bench.common import dumps
from tickpipe_local.kafka_broker import java_executable

JAVA_SOURCE = Path(__file__).with_name("BrokerRequests.java")


def counts(pid: int) -> dict[str, int]:
    """Each request type's count since the broker started."""
    out = subprocess.run(
        [java_executable(), str(JAVA_SOURCE), str(pid)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {name: int(count) for name, count in (line.split("\t") for line in out.splitlines())}


def rates(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """Requests per second of each type that was served in the window."""
    served = {name: (count - before.get(name, 0)) / seconds for name, count in after.items()}
    return {name: round(rate, 1) for name, rate in served.items() if rate > 0}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pid", type=int, help="the broker's JVM (pgrep -f kafka.Kafka)")
    parser.add_argument("--seconds", type=float, default=60.0, help="the window")
    args = parser.parse_args()
    before, started = counts(args.pid), time.monotonic()
    time.sleep(args.seconds)  # the measurement window itself, not a synchronisation
    after = counts(args.pid)
    window = time.monotonic() - started
    per_second = rates(before, after, window)
    consumer_fetches = per_second.get("FetchConsumer", 0.0)
    total = round(sum(per_second.values()) - consumer_fetches, 1)  # Fetch already counts them
    print(dumps({"seconds": round(window, 1), "requests_per_second": per_second, "total_per_second": total}))


if __name__ == "__main__":
    main()
