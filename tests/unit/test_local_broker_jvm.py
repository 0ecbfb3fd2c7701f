"""The local broker's JVM settings: the compiler choice and its validation (no broker started)."""

from pathlib import Path

import pytest

from tickpipe.process import StartError
from tickpipe_local.kafka_broker import KafkaBroker


def test_the_default_keeps_both_compilers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKPIPE_KAFKA_JIT", raising=False)
    options = KafkaBroker(tmp_path).jvm_options()
    assert not any(o.startswith("-XX:TieredStopAtLevel") for o in options)
    assert "-Xmx1g" in options


def test_c1_stops_at_the_quick_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKPIPE_KAFKA_JIT", "c1")
    assert "-XX:TieredStopAtLevel=1" in KafkaBroker(tmp_path).jvm_options()


def test_an_unknown_setting_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKPIPE_KAFKA_JIT", "C2")
    with pytest.raises(StartError, match=r"TICKPIPE_KAFKA_JIT must be one of full, c1, not 'C2'"):
        KafkaBroker(tmp_path)
