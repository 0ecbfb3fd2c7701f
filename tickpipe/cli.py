"""The `tickpipe` command line. Each area registers its own subcommands; see `tickpipe --help`.

Commands read `.tickpipe/local.env` (written by `tickpipe local up`) into the environment first,
without overriding variables already set, so that after `local up` everything just connects.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from tickpipe.config import ConfigError, read_env_file
from tickpipe.logs import setup_logging
from tickpipe.paths import local_env_file

# Modules with a `register(subparsers)` function. Heavy imports happen inside each command.
COMMAND_MODULES = (
    "tickpipe.local.cli",
    "tickpipe_simulator.cli",
    "tickpipe_producer.cli",
    "tickpipe_processor.cli",
    "tickpipe_clickhouse.cli",
    "tickpipe.demo.cli",
)

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tickpipe", description="Polygon market data -> Kafka -> processor -> Kafka -> ClickHouse"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that area is not built (or not installed) yet
            raise
        module.register(commands)
    return parser


_USER_ENVIRONMENT: frozenset[str] = frozenset(os.environ)


def user_environment() -> frozenset[str]:
    """The variables the user set, before `.tickpipe/local.env` filled in the rest."""
    return _USER_ENVIRONMENT


def apply_local_env() -> None:
    path = local_env_file()
    if not path.is_file():
        return
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)


def main(argv: Sequence[str] | None = None) -> int:
    apply_local_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        setup_logging(os.environ.get("LOG_LEVEL", "INFO").upper(), os.environ.get("LOG_FORMAT", "text"))
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"tickpipe {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
