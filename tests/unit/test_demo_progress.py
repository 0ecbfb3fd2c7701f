"""The demo's live display: the same figures in rich's terminal table and in the plain lines."""

from __future__ import annotations

import io

from rich.console import Console

from tickpipe_demo.progress import Snapshot, render, render_rich


def snapshots() -> tuple[Snapshot, Snapshot]:
    before = Snapshot(at=10.0, produced=1_000, processed_out=900, sunk=800)
    now = Snapshot(
        at=12.0, produced=21_000, processed_in=20_500, processed_out=20_400, sunk=18_800, raw_lag=12,
        filtered_lag=None, dlq={"missing_field": 3, "malformed_json": 0}, filtered={"min_volume": 7},
    )  # fmt: skip
    return before, now


def test_plain_mode_has_no_terminal_codes_and_the_rates() -> None:
    before, now = snapshots()
    text = render(now, before, 18_800, [("AAPL", 187.25)])
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[1].split()[:3] == ["producer", "10,000", "21,000"]  # (21,000 - 1,000) / 2 s
    assert lines[2].split()[:3] == ["processor", "9,750", "20,400"]
    assert "raw lag 12" in lines[2]
    assert "filtered lag ?" in lines[3]
    assert "DLQ: missing_field 3" in text
    assert "malformed_json" not in text
    assert "filtered out by rule: min_volume 7" in text
    assert "latest: AAPL 187.25" in text


def test_rich_mode_draws_the_same_figures() -> None:
    before, now = snapshots()
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=True, color_system=None).print(
        render_rich(now, before, 18_800, [("AAPL", 187.25)])
    )
    drawn = out.getvalue()
    for figure in ("10,000", "21,000", "9,750", "20,400", "18,800", "raw lag 12", "DLQ: missing_field 3"):
        assert figure in drawn
    assert "latest: AAPL 187.25" in drawn
