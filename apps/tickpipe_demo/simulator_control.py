"""The demo's handle on the local simulator: how many events it sent, and making it stop sending.

Stopping the feed before the producer lets every stage's final count be compared exactly: once the
simulator pauses, `events_sent_total` is final, the producer reads up to it, and nothing is in flight.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

PAUSE_SECONDS = 3600  # longer than any shutdown: the feed stays quiet until the simulator stops


def _call(feed: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://{feed}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if data is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def simulator_stats(feed: str) -> dict[str, Any] | None:
    """The simulator's whole `/_sim/stats` answer (the spec, and what each connection was sent)."""
    try:
        return dict(_call(feed, "/_sim/stats"))
    except OSError:
        return None


def events_sent(feed: str) -> int | None:
    """Events the simulator wrote to all its connections so far; None if it does not answer."""
    try:
        return int(_call(feed, "/_sim/stats")["totals"]["events_sent_total"])
    except OSError:
        return None


def quiesce(feed: str) -> bool:
    """Pause every open connection's feed; True if the simulator took it."""
    try:
        _call(feed, "/_sim/fault", {"action": "pause", "seconds": PAUSE_SECONDS, "target": "open"})
    except OSError:
        return False
    return True
