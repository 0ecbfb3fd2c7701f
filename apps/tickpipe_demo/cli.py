"""`tickpipe demo` and `tickpipe report`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="the whole pipeline on this machine, with live progress")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--headless", action="store_true", help="print progress lines instead of redrawing")
    demo.add_argument("--no-report", action="store_true", help="skip the analytics summary and chart")
    demo.add_argument("--poll-seconds", type=float, default=5.0, help="how often the CSV is checked [5]")
    demo.set_defaults(func=_demo)
    report = commands.add_parser("report", help="analytics summary and a candlestick chart from ClickHouse")
    report.add_argument("--symbol", default=None, help="the symbol to chart (default: the busiest)")
    report.add_argument("--out", type=Path, default=None, help="PNG path (default: .tickpipe/report/)")
    report.set_defaults(func=_report)


def _demo(args: argparse.Namespace) -> int:
    from tickpipe_cli.cli import user_environment
    from tickpipe_demo.run import DemoOptions, run_demo

    options = DemoOptions(
        duration=args.duration,
        live="POLYGON_API_KEY" in user_environment(),
        poll_seconds=args.poll_seconds,
        interactive=sys.stdout.isatty() and not args.headless,
        report=not args.no_report,
    )
    return run_demo(options)


def _report(args: argparse.Namespace) -> int:
    from tickpipe_demo.report import print_report

    dsn = os.environ.get("CLICKHOUSE_DSN", "chdb://./data/clickhouse")
    path = print_report(dsn, args.symbol, args.out)
    return 0 if path is not None else 1
