"""Status tells the truth: a stopped query, a crash loop, a broker gap and a stall each make the stream's
health failed or degraded with the reason (what `retail status` and the Pipeline health page show), and the
job's restarts end in a visible failed state with a critical alert."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from retail.settings import Settings
from retail.stream_health import record_query_state, stream_health
from retail.topics import admin_client
from spark import streaming_job
from spark.drain import LogEndWatcher
from spark.progress_listener import ProgressRecorder
from spark.streaming_job import RAW_TRANSACTIONS, start_queries
from stack import stream_service
from tests.spark.conftest import (
    load_dimensions,
    module_settings,
    scalar,
    sink_waits_for_lock,
    truncate_speed_tables,
)
from tests.spark.events import now_minute, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

OPS_HEALTH_TABLES = "ops.stream_status, ops.stream_failures, ops.kafka_log_changes, ops.alerts"


@pytest.fixture
def settings(platform: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = module_settings(platform, tmp_path_factory.mktemp("health"), "health")
    truncate_speed_tables(settings)
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute(f"truncate {OPS_HEALTH_TABLES}")
    yield settings
    # Failures left behind would make later streaming jobs of the session back off.
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute(f"truncate {OPS_HEALTH_TABLES}")


@contextmanager
def landed_query(settings: Settings, spark: SparkSession, seed: int) -> Iterator[StreamingQuery]:
    """The raw_transactions query, its progress recorded as the job records it, once its first 10
    baskets have landed; stopped on exit."""
    load_dimensions(settings)
    recorder = ProgressRecorder(settings.writer_dsn)
    spark.streams.addListener(recorder)
    rng = random.Random(seed)
    send_events(settings, [transaction(rng, now_minute()) for _ in range(10)])
    (query,) = start_queries(spark, settings, (RAW_TRANSACTIONS,))
    try:
        wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 10, what="events")
        yield query
    finally:
        query.stop()
        spark.streams.removeListener(recorder)


def test_a_stopped_query_shows_failed_with_its_reason(settings: Settings, spark: SparkSession) -> None:
    with landed_query(settings, spark, seed=4) as query:
        assert stream_health(settings.writer_dsn).state == "ok"
        admin = admin_client(settings)
        try:
            admin.delete_topics([settings.transactions_topic])
        finally:
            admin.close()
        wait_for(lambda: not query.isActive, timeout_s=180, what="the query to stop")
        wait_for(lambda: stream_health(settings.writer_dsn).state == "failed", what="failed health")
    health = stream_health(settings.writer_dsn)
    assert f"query {RAW_TRANSACTIONS} stopped" in health.reason
    assert settings.transactions_topic in health.reason


def test_restarts_back_off_then_give_up_visibly(settings: Settings) -> None:
    limited = settings.model_copy(update={"stream_max_failures": 3})
    assert [streaming_job._fail(limited, f"boom {n}") for n in range(3)] == [1, 1, streaming_job.GAVE_UP]
    health = stream_health(limited.writer_dsn)
    assert health.state == "failed" and "boom 2" in health.reason
    assert scalar(limited, "select count(*) from ops.alerts where severity = 'critical'") == 1
    assert scalar(limited, "select count(*) from ops.alerts where severity = 'error'") == 2

    # Started again by a person: running, but the failures of the last minutes still show.
    record_query_state(limited.writer_dsn, RAW_TRANSACTIONS, "running", None, "run-2")
    assert streaming_job._failures(limited) == 0
    health = stream_health(limited.writer_dsn)
    assert health.state == "degraded" and "3 failure(s)" in health.reason


def test_a_broker_gap_shows_degraded(settings: Settings) -> None:
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into ops.kafka_log_changes (topic, old_topic_id, new_topic_id, lost)"
            " values (%s, 'a', 'b', 17)",
            (settings.transactions_topic,),
        )
    health = stream_health(settings.writer_dsn)
    assert health.state == "degraded"
    assert f"{settings.transactions_topic}: 17 messages lost" in health.reason


def test_a_stalled_query_shows_degraded_with_the_waiting_count_then_recovers(
    settings: Settings, spark: SparkSession
) -> None:
    """A live query whose batch cannot commit (the test holds the topic's watermark row lock the sink
    needs) while messages wait: degraded with the exact count once RETAIL_STREAM_STALL_S passed, one
    warning alert from the job's watcher, ok again once it lands."""
    stalling = settings.model_copy(update={"stream_stall_s": 3.0})
    topic = stalling.transactions_topic
    rng = random.Random(8)
    with landed_query(stalling, spark, seed=7):
        watcher = LogEndWatcher(stalling, every_s=1.0).start()
        blocker = psycopg.connect(stalling.writer_dsn)
        try:
            assert stream_service.health(stalling, running=True).state == "ok"
            lock = "select 1 from ops.stream_watermarks where watermark_name = %s for update"
            blocker.execute(lock, (topic,))
            send_events(stalling, [transaction(rng, now_minute()) for _ in range(15)])
            wait_for(lambda: sink_waits_for_lock(stalling, blocker), what="the stream's batch to wait")

            def status() -> str:
                health = stream_service.health(stalling, running=True)
                return health.reason if health and health.state == "degraded" else ""

            wait_for(lambda: "stalled" in status(), timeout_s=120, what="degraded health")
            assert f"{topic}: 15 messages waiting, nothing landed for " in status()
            # The Pipeline health page's path without the broker: the ends the watcher recorded.
            recorded = stream_health(stalling.writer_dsn, stall_s=3.0, topics=(topic, stalling.refunds_topic))
            assert recorded.state == "degraded" and f"{topic}: 15 messages waiting" in recorded.reason
            warnings = "select context->'waiting' from ops.alerts where severity = 'warning'"
            wait_for(lambda: scalar(stalling, warnings) is not None, what="the stall alert")
            assert scalar(stalling, warnings) == {topic: 15}

            blocker.rollback()
            wait_for(lambda: scalar(stalling, "select count(*) from raw.transactions") == 25, what="landing")
            wait_for(lambda: stream_service.health(stalling, running=True).state == "ok", what="ok health")
            # One alert per stall, however often status was asked meanwhile.
            assert scalar(stalling, "select count(*) from ops.alerts where severity = 'warning'") == 1
        finally:
            blocker.close()
            watcher.stop()
