"""`python -m bench SCENARIO [--record] [--param key=value ...]` (also `tickpipe bench`).

Each scenario is a function `run(params) -> (result, summary)`: `result` is printed as JSON,
`summary` is the one-line text appended to docs/benchmarks.md with `--record`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import dumps, machine, record

Scenario = Callable[[dict[str, str]], tuple[dict[str, Any], str]]

SCENARIOS: dict[str, str] = {
    "kafka-start": "bench.kafka_start",
    "producer": "bench.producer",
}


def load(name: str) -> Scenario:
    module = importlib.import_module(SCENARIOS[name])
    run: Scenario = module.run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--record", action="store_true", help="append a dated row to docs/benchmarks.md")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    params = dict(item.split("=", 1) for item in args.param)
    result, summary = load(args.scenario)(params)
    result["machine"] = machine()
    print(dumps(result))
    print(summary, file=sys.stderr)
    if args.record:
        record(args.scenario, result, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
