"""Fixtures for the infrastructure tests: the CDK app synthesized once, offline, and the lint tools.

aws-cdk-lib runs its JavaScript core through the machine's Node.js; no AWS credentials and no
network are needed. The heavy linters live in their own virtual environments (`make tools`,
because checkov and docker-compose 1.29 pin libraries the app cannot share) and are found there,
in the variable named below, or on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TOOLS = ROOT / ".tools"

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")  # a warning banner, not an error
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


def find_tool(name: str, variable: str) -> str:
    """The tool's path: $VARIABLE, this venv, .tools/<name>/bin, then PATH; else fail (CI) or skip."""
    candidates = [
        os.environ.get(variable, ""),
        str(Path(sys.executable).parent / name),
        str(TOOLS / name / "bin" / name),
        shutil.which(name) or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    unavailable(name, f"not installed: run `make tools` (or set {variable})")


@dataclass
class Synth:
    """The synthesized cloud assembly: template files and parsed templates, by stack name."""

    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template_file(self, stack: str) -> Path:
        return self.outdir / f"{stack}.template.json"


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    import aws_cdk as cdk
    from tickpipe_infra.app import REGISTRY_STACK, SERVICES_STACK, build_app

    app = build_app(cdk.App(outdir=str(outdir), context=context or {}))
    app.synth()
    templates = {
        stack: json.loads((outdir / f"{stack}.template.json").read_text())
        for stack in (REGISTRY_STACK, SERVICES_STACK)
    }
    return Synth(outdir, templates)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The app with cdk.json's context, as `cdk synth` would build it (about 10-30 s, once)."""
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    yield synthesize(tmp_path_factory.mktemp("cdk.out"), context)
