"""Dead letters keep the original key, value bytes and headers, and add the DLQ contract's headers
(docs/architecture.md): `tp.dlq.reason`, `tp.dlq.detail`, `tp.source.topic`,
`tp.source.partition`, `tp.source.offset`. Raw events carry no secrets, so nothing is masked."""

from __future__ import annotations

from tickpipe_processor.invalid import Invalid


def dead_letter_headers(
    original: list[tuple[str, bytes]] | None,
    invalid: Invalid,
    source_topic: str,
    partition: int | None,
    offset: int | None,
) -> list[tuple[str, bytes]]:
    return [
        *(original or []),
        ("tp.dlq.reason", invalid.reason.encode()),
        ("tp.dlq.detail", invalid.detail.encode("utf-8", "replace")),
        ("tp.source.topic", source_topic.encode()),
        ("tp.source.partition", str(partition).encode()),
        ("tp.source.offset", str(offset).encode()),
    ]
