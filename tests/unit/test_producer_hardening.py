"""No input stops the producer: unencodable events, any CSV, any reloader failure, oversized objects."""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.test_producer_publisher import _publisher
from tickpipe.bounded_read import TooLarge, read_body
from tickpipe_producer.metrics import ProducerMetrics
from tickpipe_producer.reloader import InitialLoadError, Reloader, load_initial
from tickpipe_producer.source import Fetched, SourceError, SubscriptionSource
from tickpipe_producer.subscriptions import parse_subscriptions

GOOD = b"channel,symbol\nA,AAPL\n"
LONG_FIELD = b"channel,symbol,enabled,comment\nA,AAPL,,ok\nT,MSFT,," + b"x" * 140_000 + b"\n"


def _value(metric: Any, **labels: str) -> float:
    return float((metric.labels(**labels) if labels else metric)._value.get())


# --- publisher --------------------------------------------------------------------------------


def test_an_event_too_deep_to_re_encode_is_published_unchanged_for_the_processors_dlq() -> None:
    publisher, fake = _publisher()
    deep = '{"ev":"T","sym":"BAD","extra":' + "[" * 300 + "]" * 300 + "}"
    frame = f'[{{"ev":"T","sym":"AAPL","p":1,"s":1}},{deep},{{"ev":"T","sym":"MSFT","p":2,"s":1}}]'
    assert publisher.publish(1, frame) == 3
    assert [key for _, _, key, _ in fake.sent] == ["AAPL", "BAD", "MSFT"]
    assert fake.sent[1][1] == deep.encode()  # its own bytes: the processor dead-letters it (too_deep)
    assert _value(publisher.metrics.events_dropped, reason="unencodable") == 0


def test_on_the_decoding_path_an_event_too_deep_to_encode_is_a_counted_drop() -> None:
    publisher, fake = _publisher()
    deep = '{"ev":"T","sym":"BAD","extra":' + "[" * 300 + "]" * 300 + "}"
    # the element `7` is not an object, so the frame takes the decode-and-re-encode path
    frame = f'[{{"ev":"T","sym":"AAPL","p":1,"s":1}},{deep},7,{{"ev":"T","sym":"MSFT","p":2,"s":1}}]'
    assert len(orjson.loads(frame)) == 4, "orjson reads it"
    assert publisher.publish(1, frame) == 3
    assert [key for _, _, key, _ in fake.sent] == ["AAPL", None, "MSFT"]
    assert fake.sent[1][1] == b"7"
    assert _value(publisher.metrics.events_dropped, reason="unencodable") == 1
    assert publisher.fatal is None


def test_a_key_that_is_not_a_string_is_dropped_from_the_message_not_fatal() -> None:
    publisher, fake = _publisher()
    assert publisher.publish(1, '[{"ev":"T","sym":5},{"ev":"T","sym":{"a":1}},{"ev":["x"]}]') == 3
    assert [key for _, _, key, _ in fake.sent] == [None, None, None]
    assert _value(publisher.metrics.events_received, ev="other") == 1  # `ev` a list: one label, not many


def test_the_publisher_thread_survives_a_frame_that_raises_and_publishes_the_next() -> None:
    publisher, fake = _publisher()
    original = publisher.publish

    def publish(received_ns: int, frame: str | bytes) -> int:
        if frame == "boom":
            raise RuntimeError("a bug")
        return original(received_ns, frame)

    publisher.publish = publish  # type: ignore[method-assign]
    publisher.queue.offer((1, "boom"))
    publisher.queue.offer((2, '[{"ev":"T","sym":"AAPL","p":1,"s":1}]'))
    publisher.start()
    deadline = time.monotonic() + 10
    while not fake.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    publisher.stop(5)
    assert [key for _, _, key, _ in fake.sent] == ["AAPL"]
    assert publisher.fatal is None
    assert _value(publisher.metrics.events_dropped, reason="unpublishable_frame") == 1


# --- the CSV ----------------------------------------------------------------------------------


def test_a_field_over_the_csv_limit_is_a_problem_on_its_line() -> None:
    with pytest.raises(csv.Error):  # what the csv module does with it on its own
        list(csv.reader([LONG_FIELD.decode().splitlines()[2]]))
    result = parse_subscriptions(LONG_FIELD)
    assert not result.ok
    assert [problem.line for problem in result.problems] == [3]
    assert "characters" in str(result.problems[0])


def test_a_row_the_csv_module_refuses_is_a_problem_on_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = csv.reader

    def picky(lines: Any, **kw: Any) -> Any:
        rows = real(lines, **kw)
        text = lines.getvalue()
        if "MSFT" in text:
            raise csv.Error("field larger than field limit (131072)")
        return rows

    monkeypatch.setattr(csv, "reader", picky)
    result = parse_subscriptions(b"channel,symbol\nA,AAPL\nT,MSFT\n")
    assert [str(problem) for problem in result.problems] == [
        "line 3: not a CSV row: field larger than field limit (131072)"
    ]


def test_at_start_such_a_file_is_an_initial_load_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "subscriptions.csv"
    path.write_bytes(LONG_FIELD)
    with pytest.raises(InitialLoadError, match="line 3"):
        load_initial(SubscriptionSource(str(path)), "stocks")


def test_the_producer_exits_2_naming_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickpipe.config import ConfigError
    from tickpipe_producer.service import run
    from tickpipe_producer.settings import ProducerSettings

    path = tmp_path / "subscriptions.csv"
    path.write_bytes(LONG_FIELD)
    settings = ProducerSettings(subscriptions_uri=str(path), polygon_api_key="k")
    with pytest.raises(ConfigError, match="line 3"):  # the CLI's exit code 2
        run(settings)


# --- the reloader -----------------------------------------------------------------------------


class ScriptedSource:
    """Fetches what it is told to, in order; an exception in the script is raised."""

    uri = "s3://bucket/subscriptions.csv"

    def __init__(self, script: list[Any]) -> None:
        self.script = script

    def fetch(self, force: bool = False) -> Fetched | None:
        item = self.script.pop(0) if self.script else None
        if isinstance(item, BaseException):
            raise item
        return None if item is None else Fetched(item, str(len(self.script)))


def _run_reloader(source: Any, apply: Any, until: Any) -> tuple[Reloader, ProducerMetrics]:
    metrics = ProducerMetrics()
    reloader = Reloader(source, "stocks", frozenset({"A.AAPL"}), apply, metrics, poll_seconds=0.01)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(reloader.run(stop))
        deadline = time.monotonic() + 10
        while not until(reloader) and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    return reloader, metrics


def test_the_reloader_survives_any_exception_and_applies_the_next_good_file() -> None:
    applied: list[frozenset[str]] = []
    source = ScriptedSource([RuntimeError("a bug in fetch"), LONG_FIELD, b"channel,symbol\nT,MSFT\n"])
    reloader, metrics = _run_reloader(
        source, lambda add, remove, topics: applied.append(topics), lambda r: applied
    )
    assert applied == [frozenset({"T.MSFT"})], "a later good edit is applied"
    assert reloader.current == frozenset({"T.MSFT"})
    assert _value(metrics.reloader_errors) == 1
    assert _value(metrics.reloads, result="failed") == 1
    assert _value(metrics.reloads, result="rejected") == 1


def test_a_failing_apply_keeps_the_last_good_set_and_is_counted() -> None:
    calls: list[int] = []

    def apply(add: list[str], remove: list[str], topics: frozenset[str]) -> None:
        calls.append(1)
        raise ConnectionError("the websocket went away")

    source = ScriptedSource([b"channel,symbol\nT,MSFT\n"])
    reloader, metrics = _run_reloader(source, apply, lambda r: calls)
    assert reloader.current == frozenset({"A.AAPL"})
    assert _value(metrics.reloader_errors) == 1


# --- size before read ---------------------------------------------------------------------------


class UnreadableBody:
    def __init__(self, content: bytes = b"") -> None:
        self.content = content
        self.read_sizes: list[int | None] = []
        self.closed = False

    def read(self, size: int | None = None) -> bytes:
        self.read_sizes.append(size)
        if size is None:
            raise AssertionError("the whole body was read")
        return self.content[:size]

    def close(self) -> None:
        self.closed = True


class FakeS3:
    def __init__(self, length: int | None, body: UnreadableBody) -> None:
        self.response: dict[str, Any] = {"Body": body, "ETag": '"e"'}
        if length is not None:
            self.response["ContentLength"] = length

    def get_object(self, **request: Any) -> dict[str, Any]:
        return self.response


def test_an_s3_object_larger_than_the_limit_is_refused_before_its_body_is_read() -> None:
    body = UnreadableBody()
    source = SubscriptionSource("s3://b/k.csv", s3_client=FakeS3(5 * 2**30, body))
    with pytest.raises(SourceError, match="5368709120 bytes"):
        source.fetch(force=True)
    assert body.read_sizes == []
    assert body.closed


def test_an_object_without_a_true_length_is_read_only_one_byte_past_the_limit() -> None:
    body = UnreadableBody(b"x" * 100)
    with pytest.raises(TooLarge):
        read_body({"Body": body}, 10, "s3://b/k")
    assert body.read_sizes == [11]
    assert read_body({"Body": UnreadableBody(b"small"), "ContentLength": 5}, 10, "k") == b"small"


def test_a_local_csv_larger_than_the_limit_is_refused_from_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as handle:
        handle.truncate(50 * 2**20)  # sparse: 50 MB by size
    with pytest.raises(SourceError, match="bytes; the limit"):
        SubscriptionSource(str(path)).fetch(force=True)


def test_the_rules_file_is_size_checked_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from tickpipe_processor.rules import RulesError, read_source

    body = UnreadableBody()
    monkeypatch.setattr(boto3, "client", lambda *a, **kw: FakeS3(3 * 2**30, body))
    with pytest.raises(RulesError, match="3221225472 bytes"):
        read_source("s3://bucket/rules.yaml")
    assert body.read_sizes == []
    path = tmp_path / "rules.yaml"
    with path.open("wb") as handle:
        handle.truncate(20 * 2**20)
    with pytest.raises(RulesError, match="bytes; the limit"):
        read_source(str(path))
