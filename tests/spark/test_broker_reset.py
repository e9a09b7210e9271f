"""Broker reset: the checkpoint points past what the broker holds, so the query stops with a message
naming topic, partition, offsets and the recovery command, and never skips. The documented recovery
(`reset_checkpoints`) lets the stream start again."""

from __future__ import annotations

import random
import time

import pytest
from pyspark.sql import SparkSession

from retail.settings import Settings
from retail.topics import admin_client, ensure_topics
from spark.kafka_source import RESET_COMMAND
from spark.streaming_job import RAW_TRANSACTIONS, reset_checkpoints, start_queries
from tests.spark.conftest import load_dimensions, module_settings, scalar, truncate_speed_tables, wait_for
from tests.spark.events import now_minute, send_events, transaction

pytestmark = pytest.mark.integration


def test_broker_reset_stops_the_query_with_the_recovery_command(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = module_settings(platform, tmp_path_factory.mktemp("reset"), "reset")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    rng = random.Random(3)
    send_events(settings, [transaction(rng, now_minute()) for _ in range(40)])
    (query,) = start_queries(spark, settings, (RAW_TRANSACTIONS,))
    try:
        wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 40, what="first run")
    finally:
        query.stop()

    # The embedded broker keeps topics in memory: a restart loses them. Deleting and recreating the
    # topic does the same to the offsets.
    admin = admin_client(settings)
    try:
        admin.delete_topics([settings.transactions_topic])
    finally:
        admin.close()
    time.sleep(1)
    ensure_topics(settings)

    (query,) = start_queries(spark, settings, (RAW_TRANSACTIONS,))
    try:
        wait_for(lambda: not query.isActive, timeout_s=120, what="the query to stop")
    finally:
        query.stop()
    message = str(query.exception())
    assert f"Kafka topic {settings.transactions_topic!r} partition" in message
    assert "is behind the checkpointed offset" in message
    assert RESET_COMMAND in message

    backup = reset_checkpoints(settings)
    assert backup is not None and (backup / RAW_TRANSACTIONS).is_dir()
    send_events(settings, [transaction(rng, now_minute()) for _ in range(5)])
    (query,) = start_queries(spark, settings, (RAW_TRANSACTIONS,))
    try:
        wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 45, what="after reset")
    finally:
        query.stop()
    assert query.exception() is None
