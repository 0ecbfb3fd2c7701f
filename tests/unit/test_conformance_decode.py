"""Polygon's published examples (tests/conformance/polygon_examples.json) through the processor's
decoder: each stored channel's example becomes exactly the event written out for it; the channels
tickpipe refuses are refused by the subscriptions CSV with the reason."""

from __future__ import annotations

import orjson
import pytest

from tests.conformance.examples import EXAMPLES, EXPECTED
from tickpipe import contract
from tickpipe_processor.events import encode, parse
from tickpipe_processor.invalid import Invalid
from tickpipe_producer.subscriptions import CHANNELS, parse_subscriptions

STORED = sorted(name for name, expected in EXPECTED.items() if expected is not None)
REFUSED = sorted(name for name, expected in EXPECTED.items() if expected is None)


def test_every_example_has_an_expectation_and_every_channel_an_example() -> None:
    assert set(EXAMPLES) == set(EXPECTED)
    channels = set().union(*CHANNELS.values())
    assert channels <= {
        EXAMPLES[name]["raw"] and orjson.loads(EXAMPLES[name]["raw"])["ev"] for name in STORED
    }
    for example in EXAMPLES.values():
        assert example["source"]["repo"].startswith("polygon-io/"), example["name"]


@pytest.mark.parametrize("name", STORED)
def test_the_example_becomes_the_expected_event(name: str) -> None:
    _, event = parse(EXAMPLES[name]["raw"].encode(), 1_700_000_000_000_000_000)
    out = orjson.loads(encode(event))
    family = contract.FAMILY_OF_EV[out["ev"]]
    assert list(out) == list(contract.FIELDS[family])
    assert out.pop("received_ns") == 1_700_000_000_000_000_000
    expected = EXPECTED[name]
    assert expected is not None
    assert out == expected
    for key, value in expected.items():  # prices and sizes are JSON numbers; ids keep their type
        assert value is None or type(out[key]) in (type(value), float), key


@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_channel_is_refused_by_the_csv_not_dead_lettered_later(name: str) -> None:
    raw = orjson.loads(EXAMPLES[name]["raw"])
    result = parse_subscriptions(f"channel,symbol\n{raw['ev']},AAPL\n", "stocks")
    assert not result.ok
    assert "not stored by tickpipe" in str(result.problems[0])
    with pytest.raises(Invalid) as refused:
        parse(EXAMPLES[name]["raw"].encode(), None)
    assert refused.value.reason == "unknown_event"


def test_a_string_exchange_that_is_not_digits_is_a_wrong_type_with_the_key_named() -> None:
    with pytest.raises(Invalid) as bad:
        parse(b'{"ev":"C","p":"USD/CNH","x":"NY","a":6.8,"b":6.7,"t":1536036818784}', None)
    assert (bad.value.reason, bad.value.detail.split(":")[0]) == ("wrong_type", "x")
