"""Finding the lint and validation tools the deployment tests run (`make tools` installs them)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"


def find_tool(name: str, variable: str, venv: str | None = None) -> str:
    """The tool's path: $VARIABLE, this venv, .tools/<venv>/bin, then PATH; else fail (CI) or skip.

    checkov and docker-compose 1.29 pin libraries the app cannot share, so `make tools` gives each
    its own virtual environment under .tools/; hadolint and cfn-lint come with the `infra` extra.
    """
    candidates = [
        os.environ.get(variable, ""),
        str(Path(sys.executable).parent / name),
        str(TOOLS / (venv or name) / "bin" / name),
        shutil.which(name) or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return unavailable(name, f"not installed: run `make tools` (or set {variable})")
