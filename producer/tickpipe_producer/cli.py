"""`tickpipe producer` and `tickpipe subscriptions validate`."""

from __future__ import annotations

import argparse
import sys

from tickpipe.config import add_settings_flags, flag_overrides, load_settings
from tickpipe_producer.settings import ProducerSettings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    producer = commands.add_parser("producer", help="Polygon websocket -> Kafka RAW_TOPIC")
    add_settings_flags(producer, ProducerSettings)
    producer.set_defaults(func=_producer)

    subscriptions = commands.add_parser("subscriptions", help="the subscriptions CSV")
    actions = subscriptions.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="check a subscriptions CSV (path or s3:// URI)")
    validate.add_argument("location", help="a local path or s3://bucket/key.csv")
    validate.add_argument("--market", default="stocks", help="the feed's market (default: stocks)")
    validate.set_defaults(func=_validate)
    push = actions.add_parser("push", help="validate a local CSV, then upload it to SUBSCRIPTIONS_URI")
    push.add_argument("file", help="the local CSV to upload")
    push.add_argument("--to", default=None, help="destination (default: $SUBSCRIPTIONS_URI)")
    push.add_argument("--market", default=None, help="the feed's market (default: $POLYGON_MARKET or stocks)")
    push.set_defaults(func=_push)


def _producer(args: argparse.Namespace) -> int:
    from tickpipe.logs import setup_logging
    from tickpipe_producer.service import run

    settings = load_settings(ProducerSettings, flag_overrides(args))
    setup_logging(settings.log_level, settings.log_format)
    return run(settings)


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 when the file is valid, 1 when it has problems (each printed with its line)."""
    from tickpipe_producer.source import SourceError, SubscriptionSource
    from tickpipe_producer.subscriptions import CHANNELS, parse_subscriptions

    if args.market not in CHANNELS:
        print(f"unknown market {args.market!r} (known: {', '.join(sorted(CHANNELS))})", file=sys.stderr)
        return 2
    try:
        fetched = SubscriptionSource(args.location).fetch(force=True)
    except SourceError as exc:
        print(exc, file=sys.stderr)
        return 1
    assert fetched is not None
    result = parse_subscriptions(fetched.content, args.market)
    for note in result.notes:
        print(f"note: {note}")
    if not result.ok:
        print(f"{args.location}: {len(result.problems)} problem(s); the file would be rejected whole:")
        for problem in result.problems:
            print(f"  {problem}")
        return 1
    print(f"{args.location}: valid, {len(result.topics)} subscription(s): {','.join(sorted(result.topics))}")
    return 0


def _push(args: argparse.Namespace) -> int:
    """Upload a CSV only if it is valid, so a typo never reaches the producer."""
    import os
    import shutil
    from pathlib import Path

    from tickpipe_producer.source import parse_s3_uri
    from tickpipe_producer.subscriptions import parse_subscriptions

    destination = args.to or os.environ.get("SUBSCRIPTIONS_URI", "")
    if not destination:
        print("no destination: pass --to or set SUBSCRIPTIONS_URI", file=sys.stderr)
        return 2
    market = args.market or os.environ.get("POLYGON_MARKET", "stocks")
    content = Path(args.file).read_bytes()
    result = parse_subscriptions(content, market)
    if not result.ok:
        print(f"{args.file}: not uploaded, {len(result.problems)} problem(s):")
        for problem in result.problems:
            print(f"  {problem}")
        return 1
    if destination.startswith("s3://"):
        import boto3

        bucket, key = parse_s3_uri(destination)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=content, ContentType="text/csv")
    else:
        shutil.copyfile(args.file, destination)
    print(f"uploaded {args.file} to {destination}: {len(result.topics)} subscription(s)")
    return 0
