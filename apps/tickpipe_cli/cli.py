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
from tickpipe_cli.areas import AREAS, Area, area_of

# The CLI modules with a `register(subparsers)` function, in help order (the table is areas.py).
# Heavy imports happen inside each command.
COMMAND_MODULES = tuple(area.module for area in AREAS)

EXIT_CONFIG = 2


def installed_areas() -> tuple[list[Area], list[Area]]:
    """(areas this environment can run, areas whose third-party modules are missing)."""
    here: list[Area] = []
    absent: list[Area] = []
    for area in AREAS:
        (absent if area.missing() else here).append(area)
    return here, absent


def build_parser() -> argparse.ArgumentParser:
    here, absent = installed_areas()
    epilog = None
    if absent:
        lines = [f"  {', '.join(area.commands)}: {area.install_hint()}" for area in absent]
        epilog = "not installed in this environment:\n" + "\n".join(lines)
    parser = argparse.ArgumentParser(
        prog="tickpipe",
        description="Polygon market data -> Kafka -> processor -> Kafka -> ClickHouse",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in here:
        try:
            module = importlib.import_module(area.module)
        except ModuleNotFoundError as exc:
            if exc.name and area.module.startswith(exc.name):
                continue  # that area is not built (or not installed) yet
            raise
        module.register(commands)
    return parser


def not_installed(argv: Sequence[str]) -> str | None:
    """Why the command in `argv` cannot run here, if its area's dependencies are missing."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    area = area_of(command) if command else None
    missing = area.missing() if area else []
    if area is None or not missing:
        return None
    return (
        f"tickpipe {command}: not installed in this environment (missing: {', '.join(missing)}); "
        f"install it with {area.install_hint()}"
    )


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
    args_given = sys.argv[1:] if argv is None else argv
    reason = not_installed(args_given)
    if reason is not None:
        print(reason, file=sys.stderr)
        return EXIT_CONFIG
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
