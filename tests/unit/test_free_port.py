"""free_port: a port outgoing connections cannot take before the service listens on it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tickpipe.process import _ephemeral_low, free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_free() -> None:
    low = _ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(port < low for port in ports), ports  # binding port 0 gives ports inside it
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # nothing holds it


def test_a_port_in_use_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        draws: Iterator[int] = iter([taken, taken, taken + 1])  # the first two draws are in use
        monkeypatch.setattr("tickpipe.process.random.randrange", lambda low, high: next(draws))
        monkeypatch.setattr("tickpipe.process._ephemeral_low", lambda: taken + 1_000)
        assert free_port() == taken + 1


def test_a_port_is_not_given_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: Iterator[int] = iter([24_321, 24_321, 24_322])
    monkeypatch.setattr("tickpipe.process.random.randrange", lambda low, high: next(draws))
    monkeypatch.setattr("tickpipe.process._ephemeral_low", lambda: 32_768)
    monkeypatch.setattr("tickpipe.process._GIVEN", set())
    assert [free_port(), free_port()] == [24_321, 24_322]  # nothing listens on it yet either time
