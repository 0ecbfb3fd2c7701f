"""The subscriptions CSV: format, normalisation, and problems reported by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickpipe_producer.subscriptions import diff, parse_subscriptions

EXAMPLE = Path(__file__).resolve().parents[2] / "producer" / "subscriptions.example.csv"


def test_example_file_is_valid() -> None:
    result = parse_subscriptions(EXAMPLE.read_bytes())
    assert result.ok, result.problems
    assert "A.AAPL" in result.topics
    assert "AM.*" in result.topics
    assert "Q.SPY" not in result.topics  # disabled


def test_comments_blank_lines_case_bom_and_column_order() -> None:
    text = "\ufeff# comment\n\nsymbol,Channel,comment\n aapl , a ,apple\n\n  # indented\nmsft,t,\n"
    result = parse_subscriptions(text.encode())
    assert result.ok, result.problems
    assert result.topics == frozenset({"A.AAPL", "T.MSFT"})


def test_duplicates_and_wildcards_are_merged_with_notes() -> None:
    result = parse_subscriptions(b"channel,symbol\nA,AAPL\na,aapl\nA,*\nA,MSFT\nT,MSFT\n")
    assert result.ok, result.problems
    assert result.topics == frozenset({"A.*", "T.MSFT"})
    assert any("duplicate of line 2" in note for note in result.notes)
    assert any("A.MSFT is covered by A.*" in note for note in result.notes)


def test_every_problem_is_reported_with_its_line_and_the_file_rejected_whole() -> None:
    text = (
        "channel,symbol,enabled\n"  # line 1
        "A,AAPL,\n"  # 2: fine
        "AX,MSFT,\n"  # 3: unknown channel
        "T,,\n"  # 4: empty symbol
        "Q,TSLA,maybe\n"  # 5: bad enabled
        "T,BAD SYMBOL!,\n"  # 6: bad symbol
        "A,NVDA,true,extra\n"  # 7: too many values
        "A,AAPL,false\n"  # 8: conflicts with line 2
    )
    result = parse_subscriptions(text.encode())
    assert not result.ok
    lines = {problem.line: problem.message for problem in result.problems}
    assert set(lines) == {3, 4, 5, 6, 7, 8}
    assert "unknown channel 'AX'" in lines[3]
    assert "symbol is empty" in lines[4]
    assert "'maybe'" in lines[5]
    assert "invalid symbol" in lines[6]
    assert "4 values" in lines[7]
    assert "line 2" in lines[8]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "no header row"),
        (b"symbol\nAAPL\n", "no `channel` column"),
        (b"channel,symbol,enable\nA,AAPL,true\n", "unknown column `enable`"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_file_level_problems(content: bytes, expected: str) -> None:
    result = parse_subscriptions(content)
    assert not result.ok
    assert expected in str(result.problems[0])


def test_channels_depend_on_the_market() -> None:
    assert not parse_subscriptions(b"channel,symbol\nXA,BTC-USD\n", "stocks").ok
    crypto = parse_subscriptions(b"channel,symbol\nXA,btc-usd\nXT,*\n", "crypto")
    assert crypto.topics == frozenset({"XA.BTC-USD", "XT.*"})
    forex = parse_subscriptions(b"channel,symbol\nCA,EUR/USD\n", "forex")
    assert forex.topics == frozenset({"CA.EUR/USD"})


def test_diff_gives_only_the_changes() -> None:
    assert diff(frozenset({"A.AAPL", "T.MSFT"}), frozenset({"A.AAPL", "Q.TSLA"})) == (["Q.TSLA"], ["T.MSFT"])
    assert diff(frozenset({"A.AAPL"}), frozenset({"A.AAPL"})) == ([], [])
