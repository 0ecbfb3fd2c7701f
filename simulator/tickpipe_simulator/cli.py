"""`tickpipe simulate` (the Polygon-protocol simulator) and `tickpipe record` (the recorder)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# flag -> (settings field, type, help). Every flag is also SIMULATOR_<FIELD> in the environment.
_SIMULATE_FLAGS: list[tuple[str, str, type | None, str]] = [
    ("--host", "host", str, "bind address [127.0.0.1]"),
    ("--port", "port", int, "port for websocket, REST, /healthz and /_sim/* [8765]; 0 = any free port"),
    ("--api-keys", "api_keys", str, "accepted API keys, comma separated; none given = any non-empty key"),
    ("--seed", "seed", int, "random seed; same seed and options = same events [1]"),
    ("--market", "market", str, "stocks (T Q A AM), crypto (XT XQ XA) or forex (C CA) [stocks]"),
    (
        "--symbols",
        "symbols",
        str,
        "a count of the market's default symbols, or a comma list [all: 100 stocks]",
    ),
    ("--rate", "rate", float, "expected trades + quotes per second; A/AM come on top [1000]"),
    ("--profile", "profile", str, "flat, or open: a market-open burst of 6x decaying over ~5 min [flat]"),
    ("--start", "start", str, "virtual clock start: now, Unix ms or ISO 8601 [now]"),
    (
        "--session-seconds",
        "session_seconds",
        int,
        "simulate N seconds then go quiet (connections stay); 0 = endless",
    ),
    ("--max-frame-events", "max_frame_events", int, "events per websocket frame at most [1000]"),
    ("--speed", "speed", float, "virtual seconds per wall second; 0 = as fast as clients read [1]"),
    ("--replay", "replay", str, "serve a recording (from `tickpipe record`) instead of generating"),
    (
        "--replay-speed",
        "speed",
        float,
        "the same as --speed: 1 original pace, N times faster, 0 fast as read",
    ),
    ("--auth-timeout", "auth_timeout", float, "seconds a client has to authenticate [10]"),
    ("--max-connections-per-key", "max_connections_per_key", int, "then the oldest is evicted [1]"),
    ("--max-buffer-bytes", "max_buffer_bytes", int, "unsent bytes per client before slow_consumer [64 MiB]"),
    ("--history-seconds", "history_seconds", int, "seconds of bars the REST API remembers [21600]"),
    (
        "--rest-lag-seconds",
        "rest_lag_seconds",
        int,
        "REST (bars, trades, quotes) trails the websocket by this many seconds, as Polygon's can [0]",
    ),
    (
        "--tick-history-seconds",
        "tick_history_seconds",
        int,
        "seconds of trades and quotes /v3/trades and /v3/quotes remember [900]",
    ),
]


def register(subparsers: Any) -> None:
    sim = subparsers.add_parser(
        "simulate",
        help="run the Polygon-protocol simulator (websocket + REST on one port)",
        description="A Polygon/Massive stand-in: websocket feed at ws://HOST:PORT/stocks, REST, "
        "GET /healthz, GET /_sim/stats and POST /_sim/fault. See docs/simulator.md.",
    )
    for flag, field, kind, text in _SIMULATE_FLAGS:
        sim.add_argument(flag, dest=f"sim_{field}", type=kind, default=None, metavar=field.upper(), help=text)
    sim.add_argument(
        "--wait-for-subscriber",
        dest="sim_wait_for_subscriber",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start the virtual clock at the first subscription [on for --replay, else off]",
    )
    sim.add_argument(
        "--compression",
        dest="sim_compression",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept permessage-deflate (costs CPU) [off]",
    )
    sim.add_argument(
        "--fault",
        dest="faults",
        action="append",
        default=[],
        metavar="JSON",
        help='arm a fault at start, e.g. \'{"action":"close","code":1011,"after_frames":500}\' '
        '(applies to the next connection unless "target":"every"); repeatable',
    )
    sim.add_argument(
        "--rest-fault",
        dest="rest_faults",
        action="append",
        default=[],
        metavar="JSON",
        help='arm a REST fault at start, e.g. \'{"status":429,"count":20,"retry_after":1}\'; repeatable',
    )
    sim.add_argument(
        "--ready-file",
        type=Path,
        help="write the listening port to this file once ready (for harnesses using --port 0)",
    )
    sim.set_defaults(func=_simulate)

    rec = subparsers.add_parser(
        "record",
        help="record a live or simulated feed to compressed NDJSON (for --replay)",
        description="Connects with the official polygon client (POLYGON_API_KEY, POLYGON_FEED, "
        "POLYGON_SECURE, POLYGON_MARKET) and writes each frame with its receive time.",
    )
    rec.add_argument("--out", required=True, type=Path, help="output file: .gz (gzip), .zst (zstd) or plain")
    rec.add_argument("--subscribe", default="A.*", help='topics, comma separated ["A.*"]')
    rec.add_argument("--feed", dest="cfg_polygon_feed", help="websocket host[:port] [env POLYGON_FEED]")
    rec.add_argument("--market", dest="cfg_polygon_market", help="stocks, crypto, ... [env POLYGON_MARKET]")
    rec.add_argument(
        "--secure",
        dest="cfg_polygon_secure",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wss instead of ws [env POLYGON_SECURE; default true]",
    )
    rec.add_argument("--seconds", type=float, help="stop after this many seconds")
    rec.add_argument("--max-frames", type=int, help="stop after this many frames")
    rec.add_argument("--idle-seconds", type=float, help="stop once the feed was quiet this long")
    rec.set_defaults(func=_record)


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from tickpipe.config import ConfigError, load_settings
    from tickpipe_simulator.faults import FaultError, parse_fault
    from tickpipe_simulator.rest_faults import parse_rest_fault
    from tickpipe_simulator.server import serve
    from tickpipe_simulator.settings import SimulatorSettings

    overrides = {key[len("sim_") :]: value for key, value in vars(args).items() if key.startswith("sim_")}
    try:
        faults = [parse_fault(raw, default_target="next") for raw in args.faults]
    except FaultError as exc:
        raise ConfigError(f"--fault: {exc}") from None
    if faults:
        overrides["faults"] = faults
    try:
        rest_faults = [parse_rest_fault(raw) for raw in args.rest_faults]
    except FaultError as exc:
        raise ConfigError(f"--rest-fault: {exc}") from None
    if rest_faults:
        overrides["rest_faults"] = rest_faults
    settings = load_settings(SimulatorSettings, overrides)
    ready_file: Path | None = args.ready_file

    def ready(port: int) -> None:
        if ready_file is not None:
            partial = ready_file.with_suffix(".partial")
            partial.write_text(f"{port}\n")
            partial.replace(ready_file)  # atomic: a reader never sees half a number

    asyncio.run(serve(settings, ready))
    return 0


def _record(args: argparse.Namespace) -> int:
    from polygon.exceptions import AuthError

    from tickpipe.config import ConfigError, flag_overrides, load_settings
    from tickpipe_simulator.recorder import RecorderSettings, StopRules, run_recorder
    from tickpipe_simulator.topics import split_topics

    settings = load_settings(RecorderSettings, flag_overrides(args))
    if not settings.polygon_api_key.get_secret_value():
        raise ConfigError("POLYGON_API_KEY: required to record a feed (set the variable)")
    topics = split_topics(args.subscribe)
    if not topics:
        raise ConfigError("--subscribe: give at least one topic, e.g. A.*")
    rules = StopRules(seconds=args.seconds, max_frames=args.max_frames, idle_seconds=args.idle_seconds)
    try:
        result = run_recorder(settings, topics, args.out, rules)
    except AuthError:
        log.error("the feed refused the API key (auth_failed)")
        return 1
    log.info(
        "recorded",
        extra={"fields": {"frames": result.frames, "bytes": result.bytes, "out": str(result.path)}},
    )
    return 0
