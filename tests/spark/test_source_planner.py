"""The Kafka source's planner against the real broker and database (no Spark needed: planning runs on
the driver): micro-batches bounded in bytes as well as records, and a recreated log told by the
fingerprint of the last record read when the broker gives no topic ids."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from kafka.admin import NewTopic
from pyspark.sql.streaming.datasource import ReadAllAvailable

from retail.settings import Settings
from retail.topics import admin_client
from spark import kafka_source
from spark.kafka_source import KafkaStreamReader, bound_bytes
from tests.spark.events import producer
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def new_topic(settings: Settings, partitions: int = 2) -> str:
    name = f"planner-{uuid.uuid4().hex[:8]}"
    admin = admin_client(settings)
    try:
        admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
    finally:
        admin.close()
    return name


def recreate(settings: Settings, topic: str, partitions: int = 2) -> None:
    admin = admin_client(settings)
    try:
        admin.delete_topics([topic])
        wait_for(lambda: topic not in admin.list_topics(), what="the topic to go")
        admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        admin.close()


def send(settings: Settings, topic: str, per_partition: dict[int, int], size: int = 100) -> None:
    sender = producer(settings)
    try:
        for partition, count in per_partition.items():
            for _ in range(count):
                sender.send(topic, value=uuid.uuid4().bytes * (size // 16), partition=partition)
        sender.flush()
    finally:
        sender.close()


def reader(settings: Settings, topic: str, **options: str) -> KafkaStreamReader:
    return KafkaStreamReader(
        {"bootstrap": settings.bootstrap_servers, "topic": topic, **options}, ops_dsn=settings.writer_dsn
    )


def records(offset: dict) -> dict[int, int]:
    return {int(p): o for p, o in offset["partitions"].items()}


def test_bound_bytes_shrinks_every_range_alike_and_always_moves() -> None:
    assert bound_bytes({0: 0, 1: 0}, {0: 100, 1: 100}, {0: 10.0, 1: 10.0}, 2_000) == {0: 100, 1: 100}
    assert bound_bytes({0: 0, 1: 0}, {0: 100, 1: 100}, {0: 10.0, 1: 30.0}, 2_000) == {0: 50, 1: 50}
    # A partition without a sample counts at the largest mean.
    assert bound_bytes({0: 0, 1: 0}, {0: 100, 1: 100}, {0: 10.0}, 1_000) == {0: 50, 1: 50}
    # One record above the bound is still admitted, alone.
    assert bound_bytes({0: 5, 1: 0}, {0: 6, 1: 2}, {0: 1e6, 1: 1e6}, 1_000) == {0: 5, 1: 1}


def test_batches_are_bounded_in_bytes(platform: Settings) -> None:
    topic = new_topic(platform)
    send(platform, topic, {0: 40, 1: 40}, size=10_000)  # 800 KB
    planner = reader(platform, topic, maxBytesPerBatch=str(200_000), maxRecordsPerBatch="1000")
    try:
        start = planner.initialOffset()
        batches = 0
        while records(start) != {0: 40, 1: 40}:
            end = planner.latestOffset(start, planner.getDefaultReadLimit())
            admitted = sum(records(end).values()) - sum(records(start).values())
            assert 1 <= admitted <= 20, (start, end)  # 200 KB of 10 KB records
            start, batches = end, batches + 1
        assert batches >= 4
        # Without a byte bound the record bound alone decides: everything in one batch.
        unbounded = reader(platform, topic)
        try:
            first = unbounded.initialOffset()
            assert records(unbounded.latestOffset(first, ReadAllAvailable())) == {0: 40, 1: 40}
        finally:
            unbounded.stop()
    finally:
        planner.stop()


def loss_alerts(settings: Settings, topic: str) -> list[dict]:
    with psycopg.connect(settings.writer_dsn) as conn:
        rows = conn.execute(
            "select context from ops.alerts where source = 'speed_layer' and context->>'topic' = %s"
            " order by alert_id",
            (topic,),
        ).fetchall()
    return [row[0] for row in rows]


def test_without_topic_ids_a_recreated_longer_log_is_told_by_fingerprint(
    platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broker that gives no topic ids: the id the source reads is empty, as kafka-python reports then.
    monkeypatch.setattr(kafka_source, "topic_id_of", lambda consumer, topic: "")
    topic = new_topic(platform)
    send(platform, topic, {0: 10, 1: 10})
    planner = reader(platform, topic)
    try:
        start = planner.initialOffset()
        landed = planner.latestOffset(start, ReadAllAvailable())
        assert records(landed) == {0: 10, 1: 10}
        assert "topic_id" not in landed and set(landed["fingerprints"]) == {"0", "1"}

        # The same log grows: no change is seen, the next batch continues where the last ended.
        send(platform, topic, {0: 2, 1: 2})
        same = planner.latestOffset(landed, ReadAllAvailable())
        assert records(same) == {0: 12, 1: 12} and "log_start" not in same
        landed = same

        # 3 + 1 messages the stream never lands, then the topic is recreated and grows past the old log:
        # every partition's end is beyond the checkpoint, so offsets alone would read on from 12.
        send(platform, topic, {0: 3, 1: 1})
        planner.log_bounds(probe_timeout_ms=1000)  # the watcher records the ends, as in the stream
        recreate(platform, topic)
        send(platform, topic, {0: 30, 1: 30})
        assert all(end > 12 for end in planner.log_bounds(probe_timeout_ms=1000).latest.values())
        replaced = planner.latestOffset(landed, ReadAllAvailable())
        assert {int(p): o for p, o in replaced["log_start"].items()} == {0: 0, 1: 0}
        assert records(replaced) == {0: 30, 1: 30}
        (alert,) = loss_alerts(platform, topic)
        assert alert["lost"] == {"0": 3, "1": 1}

        # Planned again (a restarted planner), the same replacement is not alerted twice; the new log
        # then goes on with its own fingerprints.
        restarted = reader(platform, topic)
        try:
            assert records(restarted.latestOffset(landed, ReadAllAvailable())) == {0: 30, 1: 30}
        finally:
            restarted.stop()
        assert len(loss_alerts(platform, topic)) == 1
        send(platform, topic, {0: 1})
        assert records(planner.latestOffset(replaced, ReadAllAvailable())) == {0: 31, 1: 30}
        assert len(loss_alerts(platform, topic)) == 1
    finally:
        planner.stop()
