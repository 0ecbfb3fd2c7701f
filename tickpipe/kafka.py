"""Kafka helpers shared by the services: topic creation and client construction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 4
BROKER_DEFAULT = -1  # NewTopic: use the broker's default (KIP-464)


def ensure_topics(
    config: Mapping[str, str],
    topics: Iterable[str] | Mapping[str, int],
    partitions: int = DEFAULT_PARTITIONS,
    replication: int = BROKER_DEFAULT,
    timeout: float = 30.0,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are.

    `topics` is a list (each gets `partitions`) or a mapping of topic to its partition count. The
    replication factor is the broker's `default.replication.factor` unless given, so a topic
    created on MSK or Confluent Cloud is as durable as the cluster intends. Retries while the
    controller is still settling (a fresh broker answers metadata a moment before it accepts
    CreateTopics).
    """
    admin = AdminClient(dict(config))
    counts = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
    wanted = sorted(counts)
    deadline = time.monotonic() + timeout
    while True:
        existing = set(admin.list_topics(timeout=10).topics)
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=counts[name], replication_factor=replication) for name in missing]
        )
        retry = False
        for name, future in futures.items():
            try:
                future.result()
                log.info("created topic %s (%d partitions)", name, counts[name])
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                if error.retriable() or error.code() in (KafkaError.NOT_CONTROLLER, KafkaError._TIMED_OUT):
                    retry = True
                    continue
                raise
        if not retry:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not create topics {missing} within {timeout:.0f} s")
        time.sleep(0.2)
