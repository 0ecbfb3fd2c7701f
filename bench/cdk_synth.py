"""Offline synthesis of the CDK app (what the infra tests and `cdk synth` do), timed.

Params: `runs` (default 3). Reports each run's wall time and the resources per stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_SYNTH = """
import json, sys
sys.path.insert(0, {infra!r})
import aws_cdk as cdk
from tickpipe_infra.app import build_app
context = json.load(open({cdk_json!r}))["context"]
build_app(cdk.App(outdir={outdir!r}, context=context)).synth()
"""


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    runs = int(params.get("runs", "3"))
    env = {**os.environ, "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    seconds = []
    resources: dict[str, int] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="tickpipe-synth-") as outdir:
            code = _SYNTH.format(
                infra=str(ROOT / "infra"), cdk_json=str(ROOT / "infra" / "cdk.json"), outdir=outdir
            )
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
            seconds.append(round(time.monotonic() - started, 2))
            for template in Path(outdir).glob("*.template.json"):
                resources[template.stem.removesuffix(".template")] = len(
                    json.loads(template.read_text())["Resources"]
                )
    result = {"seconds": seconds, "best_seconds": min(seconds), "resources": resources}
    return result, f"cdk synth best of {runs}: {min(seconds):.1f} s; resources {resources}"
