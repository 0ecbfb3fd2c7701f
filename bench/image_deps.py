"""How big the images' Python environment is: the lock plus tickpipe, installed into a fresh venv.

Docker is not available on the build machines, so the image size is measured by its largest part:
`/opt/tickpipe` in the runtime stage is exactly this venv (add ~125 MB for python:3.11-slim).
Needs the network to reach PyPI (pip, no cache). Params: none.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def run(params: dict[str, str]) -> tuple[dict[str, Any], str]:
    with tempfile.TemporaryDirectory(prefix="tickpipe-image-") as tmp:
        venv = Path(tmp) / "venv"
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir"]
        subprocess.run([*pip, "--requirement", str(ROOT / "deploy" / "requirements.lock")], check=True)
        subprocess.run([*pip, "--no-deps", str(ROOT)], check=True)
        seconds = time.monotonic() - started
        site = next((venv / "lib").glob("python3*/site-packages"))
        packages = {p.name: _size(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")}
        total = _size(venv)
    largest = {
        name: round(size / 2**20) for name, size in sorted(packages.items(), key=lambda item: -item[1])[:8]
    }
    venv_mib = round(total / 2**20)
    result = {"venv_mib": venv_mib, "install_seconds": round(seconds, 1), "largest_mib": largest}
    top = ", ".join(f"{name} {mib} MiB" for name, mib in list(largest.items())[:4])
    return result, f"image venv {venv_mib} MiB (largest: {top}); install {seconds:.0f} s"
