"""The Dockerfiles, .dockerignore, the per-image dependency locks and the container health check."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.unit.extras import LOCKS, lock_pins, requirements

ROOT = Path(__file__).resolve().parents[2]
HEALTHCHECK = ROOT / "deploy" / "container" / "healthcheck.py"
# Dockerfile -> (command, port): the contract in docs/architecture.md. A batch job's image (the
# export) serves no port: None, and then it has no health check either.
IMAGES: dict[str, tuple[str, int | None]] = {
    "producer/Dockerfile": ("producer", 9101),
    "processor/Dockerfile": ("processor", 9102),
    "clickhouse/Dockerfile": ("sink", 9103),
    "simulator/Dockerfile": ("simulate", 8765),
    "deploy/web/Dockerfile": ("web", 8080),
    "deploy/history/Dockerfile": ("repair", 9104),
    "deploy/research/Dockerfile": ("export", None),
}
# Dockerfile -> the image's name, its lock (deploy/locks/<name>.txt) and its pyproject extra.
IMAGE_NAMES = {
    "producer/Dockerfile": "producer",
    "processor/Dockerfile": "processor",
    "clickhouse/Dockerfile": "sink",
    "simulator/Dockerfile": "simulator",
    "deploy/web/Dockerfile": "web",
    "deploy/history/Dockerfile": "history",
    "deploy/research/Dockerfile": "research",
}


def instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", (ROOT / path).read_text())
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_dockerfile_is_multistage_pinned_and_non_root(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert len(froms) == 2, "a build stage and a slim runtime stage"
    base = next(args for keyword, args in steps if keyword == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+", base), f"unpinned base: {base}"
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", users[-1]), "numeric non-root user last"
    secret_words = ("KEY", "PASSWORD", "SECRET", "TOKEN", "DSN")
    for keyword, args in steps:
        if keyword in ("ENV", "ARG"):
            assert not any(word in args.upper() for word in secret_words), f"secret baked in: {args}"


@pytest.mark.parametrize(("dockerfile", "contract"), sorted(IMAGES.items()))
def test_exec_form_entrypoint_command_and_healthcheck(
    dockerfile: str, contract: tuple[str, int | None]
) -> None:
    command, port = contract
    steps = dict(instructions(dockerfile))  # last of each kind: the runtime stage
    assert steps["ENTRYPOINT"] == '["tickpipe"]', "exec form, so SIGTERM reaches the process"
    assert steps["CMD"].startswith(f'["{command}"'), steps["CMD"]
    if port is None:  # a job: nothing listens, so nothing to expose or probe
        assert "EXPOSE" not in steps
        assert steps["HEALTHCHECK"] == "NONE"
        return
    assert steps["EXPOSE"] == str(port)
    health = steps["HEALTHCHECK"]
    assert 'CMD ["python", "/usr/local/bin/tickpipe-healthcheck"' in health, "exec form, no curl needed"
    assert f"METRICS_PORT={port}" in steps["ENV"] or f'"{port}"]' in health


def test_dockerfiles_differ_only_in_their_service() -> None:
    """Four copies of one recipe: a fix in one must reach all (this test says where they drift)."""

    def recipe(path: str) -> list[str]:
        lines = []
        for keyword, args in instructions(path):
            if keyword in ("CMD", "EXPOSE", "HEALTHCHECK"):
                continue
            if keyword == "ENV":
                args = re.sub(r"\s*METRICS_PORT=\d+", "", args)
            args = args.replace(f"deploy/locks/{IMAGE_NAMES[path]}.txt", "deploy/locks/IMAGE.txt")
            lines.append(f"{keyword} {args}")
        return lines

    reference = recipe("producer/Dockerfile")
    for path in IMAGES:
        assert recipe(path) == reference, f"{path} drifted from producer/Dockerfile"


def test_dockerignore_admits_exactly_what_the_images_copy() -> None:
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert "*" in (ROOT / ".dockerignore").read_text().splitlines(), "allow-list: ignore everything first"
    copied: set[str] = set()
    for path in IMAGES:
        for keyword, args in instructions(path):
            if keyword == "COPY" and not args.startswith("--from"):
                copied.update(source.removeprefix("./") for source in args.split()[:-1])
    # A source is in the context if it, or a folder above it, is admitted.
    missing = {source for source in copied if not {source, *map(str, Path(source).parents)} & allowed}
    assert not missing, f"COPY sources the build context would not contain: {missing}"
    for source in copied:
        assert (ROOT / source).exists(), f"{source} is copied into the images but does not exist"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_each_image_installs_its_own_lock_and_nothing_else(dockerfile: str) -> None:
    image = IMAGE_NAMES[dockerfile]
    steps = instructions(dockerfile)
    copied = [args.split()[0] for keyword, args in steps if keyword == "COPY" and "deploy/locks/" in args]
    assert copied == [f"deploy/locks/{image}.txt"], f"{dockerfile} must install deploy/locks/{image}.txt only"
    installs = [args for keyword, args in steps if keyword == "RUN" and " install " in args]
    assert "--requirement requirements.txt" in installs[0], "the lock first (a cached layer)"
    assert all("--no-deps ." in args for args in installs[1:]), "then the project, with --no-deps"


def test_every_lock_belongs_to_an_image() -> None:
    assert {path.stem for path in LOCKS.glob("*.txt")} == set(IMAGE_NAMES.values()), "stale lock"


@pytest.mark.parametrize("image", sorted(IMAGE_NAMES.values()))
def test_lock_pins_every_runtime_dependency(image: str) -> None:
    pins = lock_pins(image)
    for requirement in requirements(image):
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement.name} is in tickpipe[{image}] but not in deploy/locks/{image}.txt: run `make lock`"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"deploy/locks/{image}.txt pins {requirement.name}=={pins[name]}, outside "
            f"{requirement.specifier}: run `make lock`"
        )


# --- deploy/container/healthcheck.py ----------------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback HTTP server answering /healthz with the status at the head of `statuses`."""
    statuses = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), statuses
    server.shutdown()
    server.server_close()


def _check(*args: str, env: dict[str, str] | None = None) -> int:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], env=env or {}, capture_output=True, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_follows_the_service_health(health_server: tuple[int, list[int]]) -> None:
    port, statuses = health_server
    assert _check(str(port)) == 0
    assert _check(env={"METRICS_PORT": str(port)}) == 0  # port from the environment, as in the images
    statuses[0] = 503
    assert _check(str(port)) == 1


def test_healthcheck_fails_without_a_server_or_a_port() -> None:
    with socket.socket() as sock:  # a port that nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        assert _check(str(sock.getsockname()[1])) == 1
    assert _check() == 1
    assert _check("not-a-port") == 1


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_images_bind_metrics_on_every_interface(dockerfile: str) -> None:
    """Services bind 127.0.0.1 by default (METRICS_HOST); in a container the health check and
    Prometheus come from outside, so the images set 0.0.0.0."""
    steps = dict(instructions(dockerfile))
    assert "METRICS_HOST=0.0.0.0" in steps["ENV"]
