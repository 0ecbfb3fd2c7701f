"""The command areas of the `tickpipe` CLI, and which of them this Python environment can run.

Each container image installs the core plus one service's extra (`pip install 'tickpipe[producer]'`),
so the producer image has no aiohttp and no ClickHouse client. An area whose third-party modules are
missing is not registered: `tickpipe --help` lists only what runs here, and a command of a missing
area exits with code 2 naming the extra to install, never with an ImportError from deep in a handler.

`needs` lists the top-level modules an area's commands import beyond the core (pydantic, orjson,
prometheus_client, confluent_kafka): one module for each package the area's extra in pyproject.toml
adds. tests/unit/test_docker_deps.py checks that correspondence, and that each image's code imports
with nothing but its extra installed, so this table cannot quietly drift.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    module: str  # the area's CLI module, with `register(subparsers)`
    commands: tuple[str, ...]  # the top-level commands it registers
    extra: str  # the pyproject extra that installs what the commands import
    needs: tuple[str, ...]  # third-party top-level modules beyond the core

    def missing(self) -> list[str]:
        """The modules in `needs` that this environment cannot import."""
        return [name for name in self.needs if not _importable(name)]

    def install_hint(self) -> str:
        return f"pip install 'tickpipe[{self.extra}]'"


_SIMULATOR = ("aiohttp", "numpy", "polygon")
_PRODUCER = ("boto3", "msgspec", "polygon", "websockets")
_SERVICES: tuple[Area, ...] = (
    Area("tickpipe_simulator.cli", ("simulate", "record"), "simulator", _SIMULATOR),
    Area("tickpipe_producer.cli", ("producer", "subscriptions"), "producer", _PRODUCER),
    Area("tickpipe_processor.cli", ("processor",), "processor", ("boto3", "msgspec", "yaml")),
    Area("tickpipe_clickhouse.cli", ("sink", "migrate", "query"), "sink", ("clickhouse_connect",)),
    Area(
        "tickpipe_history.cli",
        ("backfill", "repair", "daily"),
        "history",
        ("boto3", "clickhouse_connect", "msgspec", "numpy", "polygon", "pyarrow", "tqdm"),
    ),
)
# The live console: aiohttp serves it; it reads ClickHouse through the query path (clickhouse_connect).
_WEB = ("aiohttp", "clickhouse_connect")
# The demo runs every service and the console on this machine, on embedded chDB, draws a chart and
# redraws its terminal display with rich.
_DEMO = {"chdb", "matplotlib", "moto", "rich", *_WEB}
_EVERYTHING = tuple(sorted({name for area in _SERVICES for name in area.needs} | _DEMO))

# Notebooks and the Parquet cold tier: the research API's frames and `tickpipe export` (S3 via boto3).
_RESEARCH = ("boto3", "clickhouse_connect", "pandas", "polars", "pyarrow")

AREAS: tuple[Area, ...] = (
    Area("tickpipe_local.cli", ("local",), "local", ("boto3", "moto", *_SIMULATOR)),
    *_SERVICES,
    Area("tickpipe_research.cli", ("export",), "research", _RESEARCH),
    Area("tickpipe_web.cli", ("web",), "web", _WEB),
    Area("tickpipe_demo.cli", ("demo", "report"), "demo", _EVERYTHING),
)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def area_of(command: str) -> Area | None:
    """The area that registers `command`, if any."""
    return next((area for area in AREAS if command in area.commands), None)
