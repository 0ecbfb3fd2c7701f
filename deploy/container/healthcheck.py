"""Container health check: GET http://127.0.0.1:PORT/healthz and exit 0 on HTTP 200, else 1.

Slim Python images have no curl or wget, and installing one only for this would grow every image
and its attack surface; the interpreter is already there. The port is the first argument, else
METRICS_PORT (so a METRICS_PORT override in compose or ECS moves the check along with the server).
Docker's HEALTHCHECK and ECS's container health check both run this file.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    port = argv[1] if len(argv) > 1 else os.environ.get("METRICS_PORT", "")
    if not port.isdigit() or not 0 < int(port) < 65536:
        print(f"healthcheck: no valid port (argument or METRICS_PORT; got {port!r})", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
