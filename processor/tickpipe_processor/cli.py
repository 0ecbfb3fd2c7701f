"""`tickpipe processor`: RAW_TOPIC -> validate, normalise, filter -> FILTERED_TOPIC (+ DLQ), exactly once.

Exit codes: 0 after SIGTERM/SIGINT (the open transaction is finished first), 2 for invalid
configuration or rules (every problem listed), 1 when Kafka says this instance cannot go on.
The service's wiring (topics, metrics, signals, the loop) is in service.py.
"""

from __future__ import annotations

import argparse
from typing import Any

from tickpipe.config import add_settings_flags, flag_overrides, load_settings
from tickpipe_processor.settings import ProcessorSettings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "processor",
        help="normalise and filter RAW_TOPIC into FILTERED_TOPIC, exactly once",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check-rules", action="store_true", help="validate FILTER_RULES, print them, and exit (0 or 2)"
    )
    add_settings_flags(parser, ProcessorSettings)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(ProcessorSettings, flag_overrides(args))
    from tickpipe.logs import setup_logging
    from tickpipe_processor.rules import load_rules

    setup_logging(settings.log_level, settings.log_format)
    rules = load_rules(settings.filter_rules, settings.aws_endpoint_url)
    if args.check_rules:
        print(rules.model_dump_json(indent=2))
        return 0
    from tickpipe_processor.service import serve

    return serve(settings, rules)
