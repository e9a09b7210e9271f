"""Consumer lag counts from the true end offsets: the embedded broker reports a partition's end as the
first offset of its last record batch, and the dashboard corrects that with the speed layer's probe and
the highest end the stream recorded for the same log (ops.kafka_log_ends)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from kafka import KafkaProducer

from dashboard.consumer_lag import broker_ends, true_ends
from retail.log_identity import arrivals_at, broker_log_ends
from retail.record_probe import probe_consumer
from retail.settings import Settings
from retail.topics import admin_client, ensure_topics


def ends(*rows: tuple[str, str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["topic", "topic_id", "kafka_partition", "end_offset"])


def test_the_recorded_end_of_the_same_log_wins_over_a_lower_probe() -> None:
    probed = ends(("tx", "id-2", 0, 10), ("tx", "id-2", 1, 30), ("rf", "", 0, 5))
    recorded = ends(("tx", "id-2", 0, 12), ("tx", "id-1", 1, 99), ("rf", "", 0, 50))
    result = true_ends(probed, recorded)
    # Partition 0: the stream saw 12 on this log. Partition 1: 99 was another (replaced) log.
    # Without a topic id old and new logs cannot be told apart: the probe alone counts.
    assert list(result.itertuples(index=False, name=None)) == [("tx", 0, 12), ("tx", 1, 30), ("rf", 0, 5)]


@pytest.mark.integration
def test_broker_ends_count_the_last_record_batch(platform: Settings) -> None:
    topic = f"lag_{uuid.uuid4().hex[:8]}"
    ensure_topics(platform.model_copy(update={"transactions_topic": topic, "transactions_partitions": 1}))
    producer = KafkaProducer(bootstrap_servers=platform.bootstrap_servers, linger_ms=200)
    try:
        for number in range(25):  # one linger window: a single record batch on the broker
            producer.send(topic, f"message {number}".encode(), partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close()
    shown = broker_ends(platform.bootstrap_servers, (topic,))
    assert list(zip(shown["kafka_partition"], shown["end_offset"], strict=True)) == [(0, 25)]
    assert shown["topic_id"][0]  # Tansu gives every topic an id: the recorded ends of its log apply


@pytest.mark.integration
def test_probing_a_missing_topic_does_not_create_it(platform: Settings) -> None:
    """After a restart of the memory-only broker, the dashboard and `retail status` may ask before the
    stream has created its topics: a topic auto-created by their metadata request would get the broker's
    default partition count instead of the platform's."""
    topic = f"missing_{uuid.uuid4().hex[:8]}"
    shown = broker_ends(platform.bootstrap_servers, (topic,))
    consumer = probe_consumer(platform.bootstrap_servers, {}, "test")
    try:
        assert broker_log_ends(consumer, (topic,), 500) == {}
        assert arrivals_at(consumer, {(topic, 0): 0}, 500) == {}
    finally:
        consumer.close()
    assert shown.empty
    admin = admin_client(platform)
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()
