"""cfn-lint and checkov on the templates, hadolint and checkov on the Dockerfiles, shellcheck.

Every checkov skip is written next to what it skips, with its reason (CloudFormation metadata in
infra/tickpipe_infra/stack.py, `# checkov:skip=` comments in the Dockerfiles); this test also
checks that no skip lacks one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.infra.conftest import Synth
from tests.infra.tools import ROOT, find_tool

DOCKERFILES = [
    "producer/Dockerfile", "processor/Dockerfile", "clickhouse/Dockerfile", "simulator/Dockerfile",
    "deploy/web/Dockerfile", "deploy/history/Dockerfile", "deploy/research/Dockerfile",
]  # fmt: skip


def _run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_cfn_lint_is_clean(synth: Synth, synth_web: Synth) -> None:
    files = [str(s.template_file(stack)) for s in (synth, synth_web) for stack in s.templates]
    # W3005 (a DependsOn already implied by a GetAtt) is the only rule ignored: CDK writes that
    # redundant DependsOn itself in the custom resource that locks down the VPC's default security
    # group (feature flag @aws-cdk/aws-ec2:restrictDefaultSecurityGroup); it is harmless.
    result = _run([find_tool("cfn-lint", "CFN_LINT"), "--ignore-checks", "W3005", "--", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def _checkov(*args: str) -> dict[str, object]:
    result = _run([find_tool("checkov", "CHECKOV"), "--skip-download", "--output", "json", *args])
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for r in reports for check in r["results"].get("failed_checks", [])]
    skipped = [check for r in reports for check in r["results"].get("skipped_checks", [])]
    passed = [check for r in reports for check in r["results"].get("passed_checks", [])]
    assert passed, "checkov checked nothing: wrong framework or path?"
    assert not failed, [(c["check_id"], c["resource"], c["file_path"]) for c in failed]
    assert result.returncode == 0, result.stderr[-2000:]
    return {"skipped": skipped}


def test_checkov_templates_are_clean(synth: Synth, synth_web: Synth) -> None:
    for assembly in (synth, synth_web):  # the default, and with the optional console
        outcome = _checkov("--framework", "cloudformation", "--directory", str(assembly.outdir))
        for check in outcome["skipped"]:  # type: ignore[attr-defined]
            assert len(check["check_result"].get("suppress_comment", "")) > 20, f"unexplained skip: {check}"


def test_checkov_dockerfiles_are_clean() -> None:
    outcome = _checkov("--framework", "dockerfile", *[arg for f in DOCKERFILES for arg in ("--file", f)])
    for check in outcome["skipped"]:  # type: ignore[attr-defined]
        assert len(check["check_result"].get("suppress_comment", "")) > 20, f"unexplained skip: {check}"


def test_hadolint_is_clean() -> None:
    result = _run([find_tool("hadolint", "HADOLINT"), "--no-color", *DOCKERFILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_script_passes_shellcheck() -> None:
    result = _run([find_tool("shellcheck", "SHELLCHECK"), "infra/deploy.sh"])
    assert result.returncode == 0, result.stdout + result.stderr
