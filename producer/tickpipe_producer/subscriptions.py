"""The subscriptions CSV: what the producer streams, edited by users in S3.

Format (docs/producer.md has the full description)::

    channel,symbol,enabled,comment
    A,AAPL,,per-second aggregates
    T,MSFT
    AM,*,true,every minute bar
    # lines starting with # and blank lines are ignored
    Q,TSLA,false,paused

- A header row naming the columns; `channel` and `symbol` are required, `enabled` and `comment`
  optional, in any order. Unknown columns are an error (a typo like `enable` would silently do nothing).
- `channel` is a Polygon channel of the producer's market; `symbol` a ticker (or pair), or `*`.
- Symbols and channels are case-normalised (upper case); duplicates are merged; a specific symbol
  already covered by the same channel's `*` is merged into the wildcard.
- `enabled` is true/false/yes/no/1/0; blank means true.

Parsing never raises on bad content (csv's own errors included): every problem is collected with
its line number, and a file with any problem is rejected whole (`ParseResult.ok` is false), so the
last good set stays in force.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

CHANNELS: dict[str, frozenset[str]] = {
    "stocks": frozenset({"A", "AM", "T", "Q"}),
    "crypto": frozenset({"XA", "XAS", "XT", "XQ", "XL2"}),
    "forex": frozenset({"CA", "CAS", "C"}),
}
# Channels Polygon sells that tickpipe does not store, refused with the reason (docs/clickhouse.md):
# they are not trades, quotes or bars, and each needs its own table and time unit.
REFUSED_CHANNELS: dict[str, str] = {
    "LULD": "limit up-limit down price bands (its `t` is in microseconds)",
    "NOI": "imbalance messages, sent around the opening and closing auctions only (its `t` is in ns)",
    "FMV": "fair market value, served by Polygon's separate business feed, not this market's feed",
}
REQUIRED_COLUMNS = ("channel", "symbol")
OPTIONAL_COLUMNS = ("enabled", "comment")
MAX_BYTES = 1_000_000
MAX_LINE = 4_096  # characters; far more than any row needs, far less than csv's 131072-char field limit

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.:/\-]{0,23}$")
_TRUE = {"", "true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based line in the file; 0 for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class ParseResult:
    topics: frozenset[str]  # "A.AAPL", "AM.*", ... (enabled rows only)
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = field(default=())  # merged duplicates and the like: informative only

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_subscriptions(content: bytes | str, market: str = "stocks") -> ParseResult:
    """Parse and validate a subscriptions CSV for `market`; see the module docstring."""
    problems: list[Problem] = []
    notes: list[str] = []
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            return ParseResult(frozenset(), (Problem(0, f"file is larger than {MAX_BYTES} bytes"),))
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return ParseResult(frozenset(), (Problem(0, f"not UTF-8 text (byte {exc.start})"),))
    else:
        text = content.removeprefix("\ufeff")
    channels = CHANNELS.get(market)
    if channels is None:
        return ParseResult(frozenset(), (Problem(0, f"unknown market {market!r}"),))

    rows = _meaningful_rows(text, problems)
    if not rows:
        return ParseResult(
            frozenset(),
            (*problems, Problem(0, "no header row: expected `channel,symbol[,enabled,comment]`")),
        )
    header_line, header = rows[0]
    columns = [name.strip().lower() for name in header]
    column_problems = _check_header(columns, header_line)
    if column_problems:
        return ParseResult(frozenset(), (*problems, *column_problems))
    index = {name: position for position, name in enumerate(columns)}

    seen: dict[str, tuple[int, bool]] = {}  # topic -> (first line, enabled)
    for line, cells in rows[1:]:
        row = _parse_row(cells, index, line, channels, market, problems)
        if row is None:
            continue
        topic, enabled = row
        if topic in seen:
            first_line, first_enabled = seen[topic]
            if first_enabled != enabled:
                problems.append(
                    Problem(
                        line,
                        f"{topic} is enabled on one line and disabled on another "
                        f"(line {first_line}); keep one",
                    )
                )
            else:
                notes.append(f"line {line}: duplicate of line {first_line} ({topic}), merged")
            continue
        seen[topic] = (line, enabled)

    topics = {topic for topic, (_, enabled) in seen.items() if enabled}
    wildcards = {topic.split(".", 1)[0] for topic in topics if topic.endswith(".*")}
    covered = {t for t in topics if not t.endswith(".*") and t.split(".", 1)[0] in wildcards}
    for topic in sorted(covered):
        notes.append(f"{topic} is covered by {topic.split('.', 1)[0]}.*, merged")
    return ParseResult(frozenset(topics - covered), tuple(problems), tuple(notes))


def _meaningful_rows(text: str, problems: list[Problem]) -> list[tuple[int, list[str]]]:
    """CSV rows with their line numbers, skipping blank lines and `#` comment lines.

    A line the csv module refuses (a field over its size limit, a NUL, a stray quote) is a problem
    on that line, never an exception."""
    rows: list[tuple[int, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(raw) > MAX_LINE:
            problems.append(Problem(number, f"line is {len(raw)} characters; at most {MAX_LINE}"))
            continue
        try:
            cells = next(csv.reader(io.StringIO(raw), skipinitialspace=True), [])
        except csv.Error as exc:
            problems.append(Problem(number, f"not a CSV row: {exc}"))
            continue
        rows.append((number, cells))
    return rows


def _check_header(columns: list[str], line: int) -> list[Problem]:
    problems: list[Problem] = []
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(Problem(line, f"header has no `{name}` column (header: {','.join(columns)})"))
    for name in columns:
        if name not in known:
            problems.append(Problem(line, f"unknown column `{name}` (known: {', '.join(sorted(known))})"))
    duplicated = {name for name in columns if columns.count(name) > 1}
    for name in sorted(duplicated):
        problems.append(Problem(line, f"column `{name}` appears more than once"))
    return problems


def _parse_row(
    cells: list[str],
    index: dict[str, int],
    line: int,
    channels: frozenset[str],
    market: str,
    problems: list[Problem],
) -> tuple[str, bool] | None:
    if len(cells) > len(index):
        problems.append(Problem(line, f"{len(cells)} values but the header has {len(index)} columns"))
        return None

    def cell(name: str) -> str:
        position = index.get(name)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    channel, symbol, enabled_text = cell("channel").upper(), cell("symbol").upper(), cell("enabled").lower()
    before = len(problems)
    if not channel:
        problems.append(Problem(line, "channel is empty"))
    elif channel in REFUSED_CHANNELS:
        problems.append(
            Problem(
                line,
                f"channel {channel} is not stored by tickpipe: {REFUSED_CHANNELS[channel]}; "
                f"expected one of {', '.join(sorted(channels))}",
            )
        )
    elif channel not in channels:
        problems.append(
            Problem(
                line,
                f"unknown channel {channel!r} for market {market} "
                f"(expected one of {', '.join(sorted(channels))})",
            )
        )
    if not symbol:
        problems.append(Problem(line, "symbol is empty"))
    elif symbol != "*" and not _SYMBOL.match(symbol):
        problems.append(
            Problem(line, f"invalid symbol {cell('symbol')!r} (letters, digits and . - / : only, or *)")
        )
    if enabled_text not in _TRUE and enabled_text not in _FALSE:
        problems.append(Problem(line, f"enabled must be true or false, not {cell('enabled')!r}"))
    if len(problems) > before:
        return None
    return f"{channel}.{symbol}", enabled_text in _TRUE


def diff(current: frozenset[str], wanted: frozenset[str]) -> tuple[list[str], list[str]]:
    """(to subscribe, to unsubscribe), sorted, to move a live connection from `current` to `wanted`."""
    return sorted(wanted - current), sorted(current - wanted)
