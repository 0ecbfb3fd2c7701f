"""pyproject.toml's core and extras, and the images' locks, read the way pip reads them (for the tests)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "deploy" / "locks"
PROJECT = "tickpipe"


def requirements(extra: str | None) -> list[Requirement]:
    """What `pip install 'tickpipe[extra]'` asks for: the core plus the extra, self-references expanded.

    Requirements whose marker does not hold on this Python (a backport) are left out.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(text) for text in project["dependencies"]]
    pending, seen = [extra] if extra else [], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in project["optional-dependencies"], f"pyproject.toml has no extra {name!r}"
        for text in project["optional-dependencies"][name]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                pending.extend(requirement.extras)  # tickpipe[sink] inside another extra
            else:
                wanted.append(requirement)
    return [r for r in wanted if r.marker is None or r.marker.evaluate({"extra": ""})]


def lock_pins(image: str) -> dict[str, str]:
    """deploy/locks/<image>.txt as {canonical name: version}; fails on anything but exact pins."""
    path = LOCKS / f"{image}.txt"
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{path.relative_to(ROOT)}: not an exact pin: {line!r}"
            assert version, f"{path.relative_to(ROOT)}: no version: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def required_imports(path: Path) -> set[str]:
    """Top-level modules a source file imports anywhere (in functions too), except optional ones.

    Optional: inside `try:` with an ImportError handler, under `if TYPE_CHECKING:`, or in either branch
    of a Python version test (`compression.zstd` from 3.14, `backports.zstd` before; importing the
    module for real decides those). Relative imports are the file's own package.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    optional = {id(inner) for node in ast.walk(tree) for stmt in _guarded(node) for inner in ast.walk(stmt)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


def _guarded(node: ast.AST) -> list[ast.stmt]:
    """The statements `node` runs only when an import may be absent (see required_imports)."""
    if isinstance(node, ast.Try):
        caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type)
        return node.body if "ImportError" in caught or "ModuleNotFoundError" in caught else []
    if isinstance(node, ast.If):
        test = ast.unparse(node.test)
        if "TYPE_CHECKING" in test:
            return node.body
        if "version_info" in test:
            return node.body + node.orelse
    return []
