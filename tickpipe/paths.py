"""Where tickpipe keeps local state (`.tickpipe/`, beside the working directory) and caches."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The local stack's folder: $TICKPIPE_HOME, else `.tickpipe` in the working directory."""
    return Path(os.environ.get("TICKPIPE_HOME", ".tickpipe")).resolve()


def local_env_file() -> Path:
    """Connection settings written by `tickpipe local up` and read by every other command."""
    return home() / "local.env"


def cache_dir() -> Path:
    """Downloads shared across checkouts (Kafka jars): $TICKPIPE_CACHE, else ~/.cache/tickpipe."""
    explicit = os.environ.get("TICKPIPE_CACHE")
    if explicit:
        return Path(explicit).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tickpipe"


def repo_root() -> Path:
    """The source checkout (for the example CSV and SQL files when running from a clone)."""
    return Path(__file__).resolve().parent.parent
