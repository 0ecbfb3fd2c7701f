"""`python -m bench SCENARIO [options]`: run one benchmark scenario and print its JSON result.

Scenarios written as `run(params) -> (result, summary)` take `--param KEY=VALUE` and `--record`
(append a dated row to docs/benchmarks.md). Scenarios written as `main(argv)` take their own
options (see `python -m bench SCENARIO --help`).
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
    "kafka-start": "bench.kafka_start",  # local broker start-up, first and cached
    "simulator": "bench.simulator",  # simulator events/s to one fast client
    "producer": "bench.producer",  # simulator -> producer -> Kafka
    "processor": "bench.processor",  # preloaded raw topic -> processor (and the Quix Streams peer)
    "sink": "bench.sink",  # preloaded filtered topic -> sink -> chDB (and peers)
    "queries": "bench.queries",
    "research": "bench.research",  # bars(), the as-of join and the Parquet export to S3
    "bars": "bench.bars",  # bars per source, corrections, conditions: insert and read cost
    "e2e": "bench.e2e",  # the whole pipeline: sustained rate, latency, RSS, CPU
    "soak-probe": "bench.soak_probe",  # what the soak's latency probe costs in the sink, by table size
    "soak": "bench.soak",  # the whole pipeline for many minutes, per minute: loss, p99, CPU/event, RSS
    "scale-out": "bench.scale_out",  # two processors and two sinks in their groups, partitioned topics
    "web": "bench.web",  # the live console: event -> websocket bar update, 100 clients, its CPU
    "image-deps": "bench.image_deps",  # the images' Python environment, installed from the lock
    "cdk-synth": "bench.cdk_synth",  # offline synthesis of the CDK app
    "history": "bench.history",  # REST backfill and flat-file loads into chDB
    "repair": "bench.repair",  # a 60 s websocket gap filled from REST: latency after the producer is back
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="this help, or a scenario's own")
    if argv is None:
        argv = sys.argv[1:]
    if not [a for a in argv if not a.startswith("-")]:
        parser.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
        parser.print_help()
        return 0
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--record", action="store_true", help="append a dated row to docs/benchmarks.md")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(SCENARIOS[args.scenario])
    if not hasattr(module, "run"):
        code: int = module.main([*rest, "--help"] if args.help else rest)
        return code
    if args.help:
        parser.print_help()
        print(f"\n{args.scenario}: {module.__doc__}")
        return 0
    if rest:
        parser.error(f"unknown options for {args.scenario}: {' '.join(rest)} (use --param KEY=VALUE)")
    params = dict(item.split("=", 1) for item in args.param)
    result, summary = module.run(params)
    result["machine"] = machine()
    print(dumps(result))
    print(summary, file=sys.stderr)
    if args.record:
        record(args.scenario, result, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
