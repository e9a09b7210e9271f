"""Fixtures of the producer tests: per-test topics on the session broker, and a consumer that reads them.

Each test gets its own topic names (settings.model_copy), so tests never see each other's messages on
the shared embedded broker; `ensure_topics` creates them on first use.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kafka import KafkaConsumer, TopicPartition

from retail.settings import Settings
from tests.waiting import wait_for


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    key: bytes
    value: bytes


def consume_all(
    settings: Settings, topic: str, idle_s: float = 3.0, expected: int | None = None, timeout_s: float = 120.0
) -> list[Message]:
    """Every message of the topic, from the beginning until nothing new arrives for `idle_s`; with
    `expected`, until at least that many arrived (and then nothing more for `idle_s`), failing after
    `timeout_s`: on a busy machine the first fetch alone can take longer than `idle_s`.

    Not bounded by the end offsets: the embedded Tansu broker reports a high watermark that lags
    behind acknowledged writes for a moment, so reading "to the end offsets" right after a producer's
    flush can stop short. All acknowledged records are readable; only the reported end lags.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        # Right after the topic's creation the client's metadata may list only some of its partitions:
        # wait for all of them, or the others' messages are never read.
        wanted = {settings.transactions_topic: settings.transactions_partitions}.get(
            topic, settings.refunds_partitions if topic == settings.refunds_topic else 1
        )

        def listed() -> set[int]:
            consumer.topics()  # fresh metadata
            return consumer.partitions_for_topic(topic) or set()

        wait_for(lambda: len(listed()) >= wanted, timeout_s=60, what=f"the {wanted} partitions of {topic}")
        partitions = [TopicPartition(topic, p) for p in sorted(listed())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: dict[tuple[int, int], Message] = {}
        idle_polls = 0
        deadline = time.monotonic() + timeout_s
        while idle_polls * 0.5 < idle_s or (expected is not None and len(messages) < expected):
            if time.monotonic() > deadline:
                per_partition = Counter(partition for partition, _ in messages)
                raise AssertionError(
                    f"{len(messages)} of {expected} messages of {topic} in {timeout_s:.0f}s; read per "
                    f"partition {dict(per_partition)} of {sorted(listed())}"
                )
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            if not batch:
                idle_polls += 1
                continue
            idle_polls = 0
            for tp, records in batch.items():
                for record in records:
                    messages[(tp.partition, record.offset)] = Message(
                        topic, tp.partition, record.key, record.value
                    )
        return [messages[position] for position in sorted(messages)]
    finally:
        consumer.close()


_counter = itertools.count()


@pytest.fixture
def topics(platform: Settings) -> Settings:
    """The session platform's settings with topic names of this test's own."""
    suffix = f"{next(_counter)}_{uuid.uuid4().hex[:8]}"
    return platform.model_copy(update={"transactions_topic": f"tx_{suffix}", "refunds_topic": f"rf_{suffix}"})


@pytest.fixture
def consume() -> Callable[[Settings, str], list[Message]]:
    return consume_all
