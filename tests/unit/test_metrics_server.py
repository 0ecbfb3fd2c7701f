"""The metrics/health server: loopback by default, silent clients dropped, threads bounded."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from tickpipe import metrics
from tickpipe.config import BaseServiceSettings
from tickpipe.metrics import MetricsServer


def _server(**kw: object) -> MetricsServer:
    return MetricsServer(CollectorRegistry(), lambda: (True, {}), **kw).start()  # type: ignore[arg-type]


def _get(port: int, path: str = "/healthz") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return int(response.status)


def _wait(condition: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_it_binds_loopback_unless_told_otherwise() -> None:
    assert BaseServiceSettings().metrics_host == "127.0.0.1"
    server = _server()
    try:
        assert server._server.server_address[0] == "127.0.0.1"
        assert _get(server.port) == 200
    finally:
        server.stop()


def test_idle_connections_do_not_pile_up_threads_and_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT_S", 0.5)
    server = _server(max_connections=4)
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        time.sleep(0.3)  # let the server accept them (a bound is checked, not waited on)
        assert threading.active_count() <= before + 4
        for conn in idle:  # every one is closed: refused at once, or dropped after the timeout
            conn.settimeout(10)
            assert conn.recv(1) == b""
        _wait(lambda: threading.active_count() <= before, "the request threads to end")
        assert _get(server.port, "/metrics") == 200
    finally:
        for conn in idle:
            conn.close()
        server.stop()
