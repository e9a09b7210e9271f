"""A recreated topic (what a restart of the memory-only broker does to every topic) is told from the old
log by its topic id, never by offsets alone: a fully landed log continues from the start of the new one
with nothing to do; unlanded messages are counted exactly per partition in an `error` alert (policy
`alert`) or stop the query with that count (policy `fail`). `--reset-checkpoints` keeps the lake's
file-sink logs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.settings import Settings
from retail.topics import admin_client, ensure_topics
from spark.drain import pending_messages
from spark.streaming_job import RAW_TRANSACTIONS, reset_checkpoints, start_queries
from tests.spark.conftest import load_dimensions, module_settings, scalar, truncate_speed_tables
from tests.spark.events import now_minute, producer, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def recreate_topic(settings: Settings) -> None:
    admin = admin_client(settings)
    try:
        admin.delete_topics([settings.transactions_topic])
        wait_for(lambda: settings.transactions_topic not in admin.list_topics(), what="the topic to go")
    finally:
        admin.close()
    ensure_topics(settings)


def send_counted(settings: Settings, baskets: list) -> dict[int, int]:
    """Send and return how many went to each partition."""
    sender = producer(settings)
    try:
        futures = [
            sender.send(settings.transactions_topic, key=b.key, value=b.model_dump_json().encode())
            for b in baskets
        ]
        sender.flush()
        counts: dict[int, int] = {}
        for future in futures:
            partition = future.get(timeout=30).partition
            counts[partition] = counts.get(partition, 0) + 1
        return counts
    finally:
        sender.close()


def run_until(spark: SparkSession, settings: Settings, landed: int) -> None:
    (query,) = start_queries(spark, settings, (RAW_TRANSACTIONS,))
    try:
        wait_for(
            lambda: not query.isActive or scalar(settings, "select count(*) from raw.transactions") == landed,
            what=f"{landed} baskets",
        )
        assert query.isActive, query.exception()
    finally:
        query.stop()


def forget_last_commit(settings: Settings) -> None:
    """The state a stop between the sink's commit and Spark's leaves: the last batch landed in Postgres,
    but the checkpoint's commit log does not know it."""
    commits = Path(urlsplit(settings.checkpoint_dir).path) / RAW_TRANSACTIONS / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    (commits / str(last)).unlink()
    (commits / f".{last}.crc").unlink(missing_ok=True)


def loss_alerts(settings: Settings) -> list[dict]:
    with psycopg.connect(settings.writer_dsn) as conn:
        rows = conn.execute(
            "select context from ops.alerts where source = 'speed_layer' and context->>'topic' = %s"
            " order by alert_id",
            (settings.transactions_topic,),
        ).fetchall()
    return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]


def test_recreated_topic_continues_alone_and_counts_what_was_lost(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = module_settings(platform, tmp_path_factory.mktemp("reset"), "reset")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    rng = random.Random(3)
    send_counted(settings, [transaction(rng, now_minute()) for _ in range(40)])
    run_until(spark, settings, 40)

    # Everything landed, though the stream stopped before Spark recorded its last batch: the drain and
    # the planner take the landed position from the sink's own record. The new log is read from its
    # start, no alert, no command.
    forget_last_commit(settings)
    assert pending_messages(settings) == {}
    recreate_topic(settings)
    send_counted(settings, [transaction(rng, now_minute()) for _ in range(5)])
    run_until(spark, settings, 45)
    assert loss_alerts(settings) == []

    # 7 messages the stream never landed (the drain saw them, as `retail down` would), then the log is
    # replaced: an error alert names each partition's exact count and the stream goes on.
    lost = send_counted(settings, [transaction(rng, now_minute()) for _ in range(7)])
    assert sum(pending_messages(settings).values()) == 7
    recreate_topic(settings)
    send_counted(settings, [transaction(rng, now_minute()) for _ in range(3)])
    run_until(spark, settings, 48)
    (alert,) = loss_alerts(settings)
    assert alert["lost"] == {str(p): n for p, n in sorted(lost.items())}
    assert scalar(settings, "select severity from ops.alerts where source = 'speed_layer'") == "error"

    # Policy fail (real Kafka's default): the same situation stops the query with the count.
    failing = settings.model_copy(update={"stream_loss_policy": "fail"})
    lost = send_counted(failing, [transaction(rng, now_minute()) for _ in range(4)])
    assert sum(pending_messages(failing).values()) == 4
    recreate_topic(failing)
    (query,) = start_queries(spark, failing, (RAW_TRANSACTIONS,))
    try:
        wait_for(lambda: not query.isActive, timeout_s=120, what="the query to stop")
    finally:
        query.stop()
    message = str(query.exception())
    assert f"Kafka topic {settings.transactions_topic!r} was replaced" in message
    for partition, count in lost.items():
        assert f"partition {partition}: {count} lost" in message

    # The documented reset still works and leaves the lake's logs where the batch layer reads them.
    backup = reset_checkpoints(failing)
    assert backup is not None and (backup / RAW_TRANSACTIONS).is_dir()
    assert not (backup / "lake_transactions_spark_metadata").exists()
