"""Fixtures for the infrastructure tests: the CDK app synthesized once, offline, and the lint tools.

aws-cdk-lib runs its JavaScript core through the machine's Node.js; no AWS credentials and no
network are needed. The lint tools are found by tests/infra/tools.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import in_ci

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")  # a warning banner, not an error


def require_cdk() -> None:
    """aws-cdk-lib comes with `make tools` (the infra extra): fail in CI without it, skip elsewhere."""
    if importlib.util.find_spec("aws_cdk") is None:
        message = "aws-cdk-lib is not installed: run `make tools` (pip install -e '.[infra]')"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))


@dataclass
class Synth:
    """The synthesized cloud assembly: template files and parsed templates, by stack name."""

    outdir: Path
    templates: dict[str, dict[str, Any]]

    def template_file(self, stack: str) -> Path:
        return self.outdir / f"{stack}.template.json"


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    import aws_cdk as cdk
    from tickpipe_infra.app import BASE_STACK, SERVICES_STACK, build_app

    app = build_app(cdk.App(outdir=str(outdir), context=context or {}))
    app.synth()
    templates = {
        stack: json.loads((outdir / f"{stack}.template.json").read_text())
        for stack in (BASE_STACK, SERVICES_STACK)
    }
    return Synth(outdir, templates)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app with cdk.json's context, as `cdk synth` would build it (about 10-30 s, once)."""
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    return synthesize(tmp_path_factory.mktemp("cdk.out"), context)


@pytest.fixture(scope="session")
def synth_web(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same with the optional console on (`-c webConsole=true`): linted like the default."""
    context = json.loads((INFRA / "cdk.json").read_text())["context"]
    return synthesize(tmp_path_factory.mktemp("cdk.out.web"), {**context, "webConsole": True})
