"""Filter rules: a small YAML file (a path or an s3:// URI), validated completely at start.

Every rule is documented in docs/processor.md, with processor/filter-rules.example.yaml as the
example. A file with problems raises `RulesError` listing each one as `FILE:LINE: key: what is
wrong`; the CLI turns it into exit code 2, so a bad deploy fails loudly instead of silently
filtering the wrong things.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tickpipe.bounded_read import TooLarge, read_body
from tickpipe.config import ConfigError
from tickpipe_processor.events import EVENT_KINDS

Session = Literal["regular", "extended", "all"]
EventKind = Literal["A", "AM", "T", "Q", "XA", "XAS", "XT", "XQ", "XL2", "CA", "CAS", "C"]
assert set(EventKind.__args__) == set(EVENT_KINDS)  # type: ignore[attr-defined]

MAX_RULES_BYTES = 1_000_000  # a rules file is a few hundred bytes; checked before it is read
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class RulesError(ConfigError):
    """The rules file cannot be used; the message lists every problem with file and line."""


class SymbolRules(BaseModel):
    model_config = _STRICT

    allow: list[str] = Field(default_factory=list, description="keep only these symbols; empty = all")
    deny: list[str] = Field(default_factory=list, description="drop these symbols")

    @model_validator(mode="after")
    def _disjoint(self) -> SymbolRules:
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"symbols both allowed and denied: {', '.join(both)}")
        return self


class DedupeRule(BaseModel):
    model_config = _STRICT

    window_seconds: float = Field(gt=0, le=86_400, description="event-time window for exact duplicates")


class BadTickRule(BaseModel):
    model_config = _STRICT

    max_deviation_pct: float = Field(gt=0, description="drop prints this far from the last accepted")


class Rules(BaseModel):
    """The whole rules file. The defaults keep every valid event (session `all`)."""

    model_config = _STRICT

    version: Literal[1] = 1
    events: list[EventKind] = Field(default_factory=lambda: list(EVENT_KINDS), min_length=1)  # type: ignore[arg-type]
    symbols: SymbolRules = Field(default_factory=SymbolRules)
    min_volume: float = Field(0, ge=0)
    min_price: float = Field(0, ge=0)
    session: Session = "all"
    dedupe: DedupeRule | None = None
    bad_tick: BadTickRule | None = None


DEFAULT_RULES = Rules()


def load_rules(source: str | None, endpoint_url: str | None = None) -> Rules:
    """Rules from a path or s3:// URI; None gives the built-in defaults."""
    if not source:
        return DEFAULT_RULES
    text = read_source(source, endpoint_url)
    return parse_rules(text, source)


def read_source(source: str, endpoint_url: str | None = None) -> str:
    if source.startswith("s3://"):
        return _read_s3(source, endpoint_url)
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_RULES_BYTES:
            raise RulesError(f"FILTER_RULES: {source} is {size} bytes; the limit is {MAX_RULES_BYTES}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"FILTER_RULES: cannot read {source}: {exc}") from None


def _read_s3(uri: str, endpoint_url: str | None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise RulesError(f"FILTER_RULES: {uri} is not s3://bucket/key")
    try:
        response = boto3.client("s3", endpoint_url=endpoint_url).get_object(Bucket=bucket, Key=key)
        return read_body(response, MAX_RULES_BYTES, uri).decode("utf-8")  # size checked before the read
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise RulesError(f"FILTER_RULES: cannot read {uri}: {code}") from None
    except TooLarge as exc:
        raise RulesError(f"FILTER_RULES: {exc}") from None
    except (BotoCoreError, UnicodeDecodeError) as exc:
        raise RulesError(f"FILTER_RULES: cannot read {uri}: {type(exc).__name__}: {exc}") from None


def parse_rules(text: str, name: str = "<rules>") -> Rules:
    """Validate YAML text as rules; RulesError lists every problem as `name:line: key: message`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"invalid rules file:\n  {where}: not valid YAML: {problem}") from None
    if root is None:
        return DEFAULT_RULES  # an empty file means "no rules": keep everything valid
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[str] = []
    _walk(root, (), lines, problems, name)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        problems.append(f"{name}:{root.start_mark.line + 1}: the file must be a mapping of rule: value")
        raise RulesError("invalid rules file:\n  " + "\n  ".join(problems))
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(exc, lines, name))
        rules = None
    if problems:
        raise RulesError("invalid rules file:\n  " + "\n  ".join(problems))
    assert rules is not None
    return rules


def _walk(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    problems: list[str],
    name: str,
) -> None:
    """Record the line of every key and list item; report duplicate keys (YAML keeps the last)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(
                    f"{name}:{key_node.start_mark.line + 1}: {_dotted((*path, key))}: duplicate key"
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, problems, name)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems, name)


def _describe(exc: ValidationError, lines: dict[tuple[str | int, ...], int], name: str) -> list[str]:
    out = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not isinstance(part, str) or not part.startswith("["))
        line = _line_of(loc, lines)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown rule (see docs/processor.md for the rules there are)"
        elif error["type"] != "missing" and "input" in error and not isinstance(error["input"], dict):
            message = f"{message} (got {error['input']!r})"
        key = _dotted(loc) or "(top level)"
        out.append(f"{name}:{line}: {key}: {message}")
    return out


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
