"""Where the SQL lives: inside the installed package (wheel), else in the source checkout.

The wheel force-includes `clickhouse/migrations` and `clickhouse/queries` as
`tickpipe_clickhouse/migrations` and `/queries`; an editable install or a plain clone has them one
folder up, beside this package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def sql_dir(name: str) -> Path:
    """`migrations` or `queries`: the packaged folder first, then the source tree's."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no {name}/ folder beside {_PACKAGE} (is the package installed whole?)")
