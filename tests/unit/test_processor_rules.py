"""The rules file: defaults, the example file, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpipe.paths import repo_root
from tickpipe_cli.cli import main
from tickpipe_processor.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules

EXAMPLE = repo_root() / "processor" / "filter-rules.example.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    return [line.strip() for line in str(caught.value).splitlines()[1:]]


def test_defaults_keep_everything_valid() -> None:
    assert load_rules(None) is DEFAULT_RULES
    assert DEFAULT_RULES.session == "all"
    assert set(DEFAULT_RULES.events) == {
        "A",
        "AM",
        "T",
        "Q",
        "XA",
        "XAS",
        "XT",
        "XQ",
        "XL2",
        "CA",
        "CAS",
        "C",
    }
    assert DEFAULT_RULES.dedupe is None
    assert DEFAULT_RULES.bad_tick is None
    assert parse_rules("", "empty.yaml") == DEFAULT_RULES


def test_example_file_is_valid_and_documented_values_hold() -> None:
    rules = load_rules(str(EXAMPLE))
    assert rules.events == ["A", "AM", "T", "Q"]
    assert rules.symbols.deny == ["TEST", "ZVZZT"]
    assert rules.dedupe is not None
    assert rules.dedupe.window_seconds == 60


def test_every_problem_is_listed_with_its_line() -> None:
    text = "\n".join(
        [
            "version: 1",
            "events: [A, TT]",
            "min_volume: -5",
            "session: lunch",
            "symbols:",
            "  allow: [AAPL]",
            "  deny: AAPL",
            "dedup: {window_seconds: 10}",
            "bad_tick: {max_deviation_pct: 0}",
        ]
    )
    found = problems(text)
    assert any(line.startswith("rules.yaml:2: events[1]:") for line in found), found
    assert any(line.startswith("rules.yaml:3: min_volume:") and "-5" in line for line in found), found
    assert any(line.startswith("rules.yaml:4: session:") and "lunch" in line for line in found), found
    assert any(line.startswith("rules.yaml:7: symbols.deny:") for line in found), found
    assert any(line.startswith("rules.yaml:8: dedup: unknown rule") for line in found), found
    assert any(line.startswith("rules.yaml:9: bad_tick.max_deviation_pct:") for line in found), found
    assert len(found) == 6, found


def test_strings_are_not_numbers() -> None:
    assert problems("min_price: '5'")[0].startswith("rules.yaml:1: min_price:")


def test_a_symbol_both_allowed_and_denied_is_refused() -> None:
    found = problems("symbols:\n  allow: [AAPL, MSFT]\n  deny: [MSFT]\n")
    assert found == ["rules.yaml:1: symbols: Value error, symbols both allowed and denied: MSFT"]


def test_duplicate_keys_and_bad_yaml_are_named() -> None:
    assert problems("min_price: 1\nmin_price: 2\n") == ["rules.yaml:2: min_price: duplicate key"]
    found = problems("events: [A, T\nsession: all\n")
    assert found[0].startswith("rules.yaml:")
    assert "not valid YAML" in found[0]
    assert problems("- A\n- T\n") == ["rules.yaml:1: the file must be a mapping of rule: value"]


def test_unreadable_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="FILTER_RULES: cannot read"):
        load_rules(str(tmp_path / "missing.yaml"))


def test_cli_exits_2_listing_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("session: lunch\nmin_price: -1\n")
    assert main(["processor", "--check-rules", "--filter-rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:1: session:" in err
    assert f"{rules}:2: min_price:" in err


def test_cli_check_rules_prints_the_rules_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["processor", "--check-rules", "--filter-rules", str(EXAMPLE)]) == 0
    assert '"window_seconds": 60.0' in capsys.readouterr().out
