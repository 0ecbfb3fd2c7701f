"""Topics, frames, faults and settings of the simulator (pure logic)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tickpipe.config import ConfigError, load_settings
from tickpipe_simulator.events import Tick
from tickpipe_simulator.faults import FaultError, parse_fault
from tickpipe_simulator.frames import build_frames
from tickpipe_simulator.settings import SimulatorSettings, parse_start
from tickpipe_simulator.topics import STOCK_EVENT_TYPES, Selection, TopicError, parse_topic, split_topics


def test_split_topics_accepts_spaces_and_blanks() -> None:
    assert split_topics("A.AAPL, T.*,,AM.MSFT ") == ["A.AAPL", "T.*", "AM.MSFT"]


@pytest.mark.parametrize(
    ("topic", "message"), [("AAPL", "EV.SYMBOL"), ("X.AAPL", "unknown event type"), ("A.", "EV")]
)
def test_bad_topics_are_named(topic: str, message: str) -> None:
    with pytest.raises(TopicError, match=message) as info:
        parse_topic(topic)
    assert repr(topic) in str(info.value)


def test_selection_wildcards_and_pairs() -> None:
    selection = Selection(frozenset({"A.*", "T.AAPL", "A.MSFT"}))
    assert selection.wants("A", "ZZZ")
    assert selection.wants("T", "AAPL")
    assert not selection.wants("T", "MSFT")
    assert not selection.wants("Q", "AAPL")
    assert selection.indexes(["A", "T", "T", "Q"], ["X", "MSFT", "AAPL", "AAPL"]) == [0, 2]
    assert Selection(frozenset(f"{ev}.*" for ev in STOCK_EVENT_TYPES)).covers_all(STOCK_EVENT_TYPES)


def _tick(count: int) -> Tick:
    evs = ["T" if i % 2 else "Q" for i in range(count)]
    syms = ["AAPL" if i % 3 else "MSFT" for i in range(count)]
    times = [1000 + i for i in range(count)]
    events: list[dict[str, object]] = [
        {"ev": ev, "sym": sym, "t": t} for ev, sym, t in zip(evs, syms, times, strict=True)
    ]
    return Tick(
        offset_s=1.0,
        events=events,
        evs=evs,
        syms=syms,
        times=times,
        second_ms=1000,
    )


def test_frames_respect_the_event_limit_and_count_what_they_hold() -> None:
    tick = _tick(25)
    frames = build_frames(tick, Selection(frozenset({"T.*", "Q.*", "A.*", "AM.*"})), 10, STOCK_EVENT_TYPES)
    assert [sum(f.counts.values()) for f in frames] == [10, 10, 5]
    assert [len(orjson.loads(f.data)) for f in frames] == [10, 10, 5]
    assert [f.completes_second for f in frames] == [False, False, True]
    assert (frames[1].first_ms, frames[1].last_ms) == (1010, 1019)
    only = build_frames(tick, Selection(frozenset({"T.AAPL"})), 10, STOCK_EVENT_TYPES)
    sent = [e for f in only for e in orjson.loads(f.data)]
    assert sent == [e for e in tick.events if e["ev"] == "T" and e["sym"] == "AAPL"]
    assert sum(f.counts["T"] for f in only) == len(sent)


def test_faults_parse_with_defaults_and_name_bad_fields() -> None:
    fault = parse_fault('{"action": "close", "code": 1011, "after_frames": 5}', default_target="next")
    assert (fault.action, fault.code, fault.after_frames, fault.target) == ("close", 1011, 5, "next")
    assert parse_fault({"action": "pause", "seconds": 2, "target": "every"}).target == "every"
    with pytest.raises(FaultError, match="code"):
        parse_fault('{"action": "close", "code": 4000}')
    with pytest.raises(FaultError, match="action"):
        parse_fault('{"action": "explode"}')
    with pytest.raises(FaultError, match="after"):
        parse_fault('{"action": "close", "after": 3}')
    with pytest.raises(FaultError, match="invalid fault"):
        parse_fault("not json")


def test_settings_from_environment_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_API_KEYS", "k1, k2")
    monkeypatch.setenv("SIMULATOR_RATE", "5000")
    settings = load_settings(SimulatorSettings, {"rate": 7.5, "symbols": "AAPL,MSFT"})
    assert settings.key_set() == {"k1", "k2"}
    assert settings.rate == 7.5
    assert [s.ticker for s in settings.market_spec().symbols] == ["AAPL", "MSFT"]
    assert "k1" not in repr(settings)
    assert "k1" not in str(settings.effective())


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"port": "x"}, "PORT"),
        ({"symbols": "0"}, "SYMBOLS"),
        ({"profile": "lunch"}, "PROFILE"),
        ({"start": "yesterday"}, "START"),
        ({"replay": "/nonexistent/recording.ndjson.gz"}, "REPLAY"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_setting(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(SimulatorSettings, overrides)


def test_secret_keys_never_appear_in_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_API_KEYS", "supersecret")
    with pytest.raises(ConfigError) as info:
        load_settings(SimulatorSettings, {"port": "x"})
    assert "supersecret" not in str(info.value)


def test_start_parses_now_ms_and_iso() -> None:
    assert parse_start("1732285800123") == 1732285800000
    assert parse_start("2024-11-22T14:30:00Z") == 1732285800000
    assert parse_start("2024-11-22T14:30:00") == 1732285800000
    assert parse_start("now") % 1000 == 0


def test_replay_setting_accepts_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "session.ndjson"
    path.write_text("")
    assert load_settings(SimulatorSettings, {"replay": str(path)}).replay == path
