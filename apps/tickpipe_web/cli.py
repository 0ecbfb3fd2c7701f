"""`tickpipe web`: the live console and the `/ws` bar stream."""

from __future__ import annotations

import argparse

from tickpipe.config import add_settings_flags, flag_overrides, load_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tickpipe_web.settings import WebSettings

    web = commands.add_parser(
        "web", help="the live web console (candles, prices, pipeline health, read-only SQL) and /ws"
    )
    add_settings_flags(web, WebSettings)
    web.set_defaults(func=_web)


def _web(args: argparse.Namespace) -> int:
    from tickpipe_web.service import run_web
    from tickpipe_web.settings import WebSettings

    settings = load_settings(WebSettings, flag_overrides(args))

    def ready(url: str) -> None:
        print(f"tickpipe web: {url}", flush=True)

    return run_web(settings, ready)
