"""`tickpipe local up|status|down`."""

from __future__ import annotations

import argparse

from tickpipe.config import mask_value
from tickpipe.paths import home, local_env_file


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = commands.add_parser("local", help="start, inspect and stop the local real stack")
    actions = local.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="start Kafka, moto S3 and the simulator (reuses what runs)")
    up.add_argument("--no-simulator", action="store_true", help="do not start the Polygon simulator")
    up.set_defaults(func=_up)
    actions.add_parser("status", help="what runs, where, and its log").set_defaults(func=_status)
    down = actions.add_parser("down", help="stop what `up` started")
    down.add_argument("--purge", action="store_true", help="also delete Kafka, S3 and ClickHouse data")
    down.set_defaults(func=_down)
    fetch = actions.add_parser("fetch", help="download the Kafka jars from Maven Central (once; cached)")
    fetch.set_defaults(func=_fetch)


def _up(args: argparse.Namespace) -> int:
    from tickpipe_local import stack

    settings = stack.up(with_simulator=not args.no_simulator)
    print(f"local stack is up; settings written to {local_env_file()}")
    for key, value in settings.items():
        print(f"  {key}={mask_value(key, value)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from tickpipe_local import stack

    parts = stack.status()
    if not parts:
        print(f"nothing started from {home()}")
        return 1
    for part in parts:
        state = "running" if part.running else "NOT running"
        print(f"{part.name:10} {state:12} pid {part.pid}  {part.address}  log {part.log_file}")
    return 0 if all(part.running for part in parts) else 1


def _down(args: argparse.Namespace) -> int:
    from tickpipe_local import stack

    stopped = stack.down(purge=args.purge)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from tickpipe_local.kafka_broker import KAFKA_VERSION, fetch_jars

    print(f"Kafka {KAFKA_VERSION} jars in {fetch_jars()}")
    return 0
