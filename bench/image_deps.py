"""How big each image's Python environment is, installed exactly as its Dockerfile installs it.

Docker is not available on the build machines, so an image is measured by its largest part:
`/opt/tickpipe` in the runtime stage. Like the Dockerfiles, this makes a venv without pip, installs
deploy/locks/<image>.txt into it with this interpreter's pip (`--python`), then tickpipe with
--no-deps, then compiles the bytecode; add ~125 MB for the python:3.11-slim base. Each environment
is then checked: it imports every module of the image's area and registers exactly its commands
(what tests/unit/test_docker_deps.py checks offline, here in a real install).

Needs the network to reach PyPI (pip, no cache).
Params: `images` (comma separated; default producer,processor,sink,simulator), `target_mib`
(default 150: what "small" means here, see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tickpipe_cli.areas import AREAS

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("producer", "processor", "sink", "simulator")
# Runs inside the image's venv: import the area's modules and the core, list the CLI's commands.
_PROBE = """
import argparse, importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
names += ["tickpipe." + n for n in ("areas", "cli", "config", "kafka", "logs", "metrics", "paths")]
errors = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
from tickpipe_cli.cli import build_parser
action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
print(json.dumps({"modules": len(names), "errors": errors, "commands": sorted(action.choices)}))
"""


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure(image: str, workdir: Path) -> dict[str, Any]:
    area = next(area for area in AREAS if area.extra == image)
    venv = workdir / image
    python = venv / "bin" / "python"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-cache-dir"]
    subprocess.run([*pip, "--requirement", str(ROOT / "deploy" / "locks" / f"{image}.txt")], check=True)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
    subprocess.run([str(python), "-m", "compileall", "-q", str(venv)], check=True)
    seconds = time.monotonic() - started
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = {p.name: _size(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")}
    largest = {
        name: round(size / 2**20, 1) for name, size in sorted(packages.items(), key=lambda item: -item[1])[:6]
    }
    probe = subprocess.run(
        [str(python), "-c", _PROBE, area.module.split(".")[0]],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(venv / "bin"), "HOME": str(workdir), "TICKPIPE_HOME": str(workdir)},
        cwd=workdir,
    )
    checked = json.loads(probe.stdout) if probe.returncode == 0 else {"errors": [probe.stderr[-2000:]]}
    return {
        "venv_mib": round(_size(venv) / 2**20),
        "install_seconds": round(seconds, 1),
        "largest_mib": largest,
        "modules_imported": checked.get("modules", 0),
        "import_errors": checked["errors"],
        "commands": checked.get("commands", []),
        "commands_ok": checked.get("commands") == sorted(area.commands),
    }


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    images = [name for name in params.get("images", ",".join(IMAGES)).split(",") if name]
    unknown = set(images) - set(IMAGES)
    if unknown:
        raise SystemExit(f"image-deps: unknown images {sorted(unknown)} (known: {', '.join(IMAGES)})")
    target = int(params.get("target_mib", "150"))
    with tempfile.TemporaryDirectory(prefix="tickpipe-image-") as tmp:
        measured = {image: measure(image, Path(tmp)) for image in images}
    ok = all(m["commands_ok"] and not m["import_errors"] for m in measured.values())
    met = all(m["venv_mib"] <= target for m in measured.values())
    result = {"images": measured, "target_mib": target, "target_met": met, "all_commands_run": ok}
    sizes = ", ".join(f"{image} {m['venv_mib']} MiB" for image, m in measured.items())
    verdict = "met" if met else "MISSED"
    checks = "each runs its commands" if ok else "IMPORT OR COMMAND CHECK FAILED"
    return result, f"image venvs: {sizes} (target <= {target} MiB: {verdict}); {checks}"
