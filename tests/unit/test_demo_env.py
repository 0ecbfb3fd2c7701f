"""The demo's service environment: live mode uses the user's feed, never the local simulator's."""

from __future__ import annotations

import pytest

from tickpipe_cli import cli
from tickpipe_demo.run import DemoOptions, _service_env

STACK = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "POLYGON_FEED": "127.0.0.1:8765",
    "POLYGON_SECURE": "false",
    "POLYGON_API_KEY": "local-simulator-key",
}


def test_simulated_run_uses_the_stack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _service_env(STACK, DemoOptions(live=False, poll_seconds=3))
    assert env["POLYGON_FEED"] == "127.0.0.1:8765"
    assert env["SUBSCRIPTIONS_POLL_SECONDS"] == "3"


def test_live_run_takes_only_what_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYGON_API_KEY", "user-key")
    monkeypatch.setenv(
        "POLYGON_FEED", "127.0.0.1:8765"
    )  # filled in from .tickpipe/local.env, not by the user
    monkeypatch.setattr(cli, "_USER_ENVIRONMENT", frozenset({"POLYGON_API_KEY"}))
    env = _service_env(STACK, DemoOptions(live=True))
    assert env["POLYGON_API_KEY"] == "user-key"
    assert "POLYGON_FEED" not in env, "the producer's default, socket.polygon.io, applies"
    assert "POLYGON_SECURE" not in env
