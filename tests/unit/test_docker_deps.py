"""Each image installs the core plus one extra: does it still run its command, and only that?

An image's Python environment is reproduced here offline: a fresh interpreter in which every
installed distribution that the image's lock (deploy/locks/<image>.txt) does not pin is made
unimportable (None in sys.modules: how Python spells "not installed"). There the CLI must register
exactly the image's commands, every module of the image's area must import, and so must every
module its code imports lazily inside functions (read from the source). `python -m bench
image-deps` repeats the check in real virtual environments installed from the locks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.unit.extras import ROOT, lock_pins, required_imports, requirements
from tickpipe_cli.areas import AREAS, Area

FIRST_PARTY = {
    "tickpipe",
    "tickpipe_cli",
    "tickpipe_local",
    "tickpipe_demo",
    "tickpipe_research",
    "tickpipe_producer",
    "tickpipe_processor",
    "tickpipe_clickhouse",
    "tickpipe_history",
    "tickpipe_simulator",
    "tickpipe_web",
}
# image -> (its area's package folder, scripts the image runs besides `tickpipe`)
IMAGES = {
    "producer": ("producer/tickpipe_producer", ["deploy/compose/seed_s3.py"]),
    "processor": ("processor/tickpipe_processor", []),
    "sink": ("clickhouse/tickpipe_clickhouse", []),
    "simulator": ("simulator/tickpipe_simulator", []),
    "web": ("apps/tickpipe_web", []),
    "history": ("history/tickpipe_history", []),
    "research": ("apps/tickpipe_research", []),
}
# Commands an image registers besides its own area's: tickpipe[web], [history] and [research]
# include tickpipe[sink]; tickpipe[history] also holds all the producer needs (boto3, and
# polygon-api-client, which brings websockets).
_SINK = ("sink", "migrate", "query")
ALSO_REGISTERED = {
    "web": _SINK,
    "history": (*_SINK, "producer", "subscriptions"),
    "research": _SINK,
}
HEALTHCHECK = "deploy/container/healthcheck.py"
# What every image has: the core (tickpipe/) and the `tickpipe` command (apps/tickpipe_cli/); the
# local stack and the demo have extras of their own.
CORE = sorted(
    p
    for folder in (ROOT / "tickpipe", ROOT / "apps" / "tickpipe_cli")
    for p in folder.glob("*.py")
    if p.name != "__main__.py"
)

# Runs in the simulated image: block, build the CLI, import everything; report as JSON.
PROBE = """
import argparse, importlib, json, runpy, sys
job = json.load(sys.stdin)
for name in job["blocked"]:
    sys.modules[name] = None
errors = []
for kind, target in [("module", m) for m in job["modules"]] + [("file", f) for f in job["files"]]:
    try:
        importlib.import_module(target) if kind == "module" else runpy.run_path(target, run_name="probe")
    except Exception as exc:
        errors.append([target, f"{type(exc).__name__}: {exc}"])
from tickpipe_cli.cli import build_parser
parser = build_parser()
action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
print(json.dumps({"registered": sorted(action.choices), "errors": errors}))
"""


def area_of_image(image: str) -> Area:
    return next(area for area in AREAS if area.extra == image)


def blocked_modules(pins: dict[str, str]) -> list[str]:
    """Top-level modules installed here that come only from distributions outside the lock."""
    allowed = set(pins) | {"tickpipe"}
    return sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if module not in FIRST_PARTY and not {canonicalize_name(d) for d in dists} & allowed
    )


def module_names(package_dir: Path) -> list[str]:
    package = package_dir.name
    return sorted(
        ".".join((package, *path.relative_to(package_dir).with_suffix("").parts)).removesuffix(".__init__")
        for path in package_dir.rglob("*.py")
    )


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_runs_its_commands_with_only_its_locked_packages(image: str, tmp_path: Path) -> None:
    folder, scripts = IMAGES[image]
    area = area_of_image(image)
    files = [*CORE, *(ROOT / folder).rglob("*.py"), *(ROOT / s for s in [*scripts, HEALTHCHECK])]
    importers: dict[str, list[str]] = {}  # third-party module -> the files that import it
    for path in files:
        for name in required_imports(path) - FIRST_PARTY - set(sys.stdlib_module_names):
            importers.setdefault(name, []).append(str(path.relative_to(ROOT)))
    core = [f"{path.parent.name}.{path.stem}" for path in CORE if path.stem != "__init__"]
    job = {
        "blocked": blocked_modules(lock_pins(image)),
        "modules": [*core, *module_names(ROOT / folder), *sorted(importers)],
        "files": [str(ROOT / s) for s in [*scripts, HEALTHCHECK]],
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(job),
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TICKPIPE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    errors = []
    for target, error in report["errors"]:
        where = f" (imported by {', '.join(importers[target])})" if target in importers else ""
        errors.append(f"{target}{where}: {error}")
    assert not errors, (
        f"the {image} image cannot import what its code needs; add the package to the "
        f"`{area.extra}` extra in pyproject.toml, then `make lock`:\n" + "\n".join(errors)
    )
    expected = sorted((*area.commands, *ALSO_REGISTERED.get(image, ())))
    assert report["registered"] == expected, "exactly the image's own commands"


@pytest.mark.parametrize("area", AREAS, ids=lambda area: area.extra)
def test_an_areas_needs_are_exactly_what_its_extra_adds(area: Area) -> None:
    """The registry's `needs` and pyproject's extra name the same packages, so `pip install
    'tickpipe[extra]'` registers the area, and an environment without one of them does not."""
    core = {canonicalize_name(r.name) for r in requirements(None)}
    added = {canonicalize_name(r.name): r for r in requirements(area.extra)}
    by_module = importlib.metadata.packages_distributions()
    needed = {module: {canonicalize_name(d) for d in by_module.get(module, [])} for module in area.needs}
    for module, dists in needed.items():
        assert dists & set(added), (
            f"{area.module} needs {module}, which tickpipe[{area.extra}] does not install"
        )
    covered = set().union(*needed.values())
    for name, requirement in added.items():
        if name not in core and requirement.marker is None:  # a backport for old Pythons is no signal
            assert name in covered, (
                f"tickpipe[{area.extra}] adds {name}: list its module in {area.module}'s needs"
            )


@pytest.mark.parametrize("area", AREAS, ids=lambda area: area.extra)
def test_area_table_names_the_commands_each_area_registers(area: Area) -> None:
    """tickpipe/areas.py names an area's commands so that a missing one gets a clear error."""
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    importlib.import_module(area.module).register(commands)
    assert tuple(commands.choices) == area.commands
