"""Late data: events 0-5 minutes behind the latest event time of their topic are aggregated; later ones
are not, but still land in the raw tables and the lake and are counted per minute and topic in
ops.late_events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from retail.settings import Settings
from spark.lake import dataset_path
from spark.streaming_job import start_queries
from tests.spark.conftest import load_dimensions, module_settings, scalar, truncate_speed_tables
from tests.spark.events import now_minute, refund, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, dict[str, StreamingQuery]]]:
    settings = module_settings(platform, tmp_path_factory.mktemp("late"), "late")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    queries = start_queries(spark, settings)
    try:
        yield settings, {q.name: q for q in queries}
    finally:
        for query in queries:
            query.stop()


def test_late_events_are_kept_counted_and_not_aggregated(
    running: tuple[Settings, dict[str, StreamingQuery]], spark: SparkSession
) -> None:
    settings, _ = running
    rng = random.Random(11)
    latest = now_minute() + timedelta(seconds=30)
    current = [transaction(rng, latest, lines=1) for _ in range(5)]
    current_refund = refund(rng, current[0], latest)
    send_events(settings, current, [current_refund])
    wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 5, what="current events")
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 1, what="current refund")
    # Each topic's watermark advanced in the same transaction as its raw rows.
    assert (
        scalar(settings, "select count(*) from ops.stream_watermarks where max_event_ts = %s", (latest,)) == 2
    )

    on_time = [transaction(rng, latest - timedelta(minutes=3), lines=1) for _ in range(3)]
    late = [transaction(rng, latest - timedelta(minutes=8), lines=1) for _ in range(4)]
    late_refund = refund(rng, late[0], latest - timedelta(minutes=8))
    send_events(settings, on_time + late, [late_refund])

    wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 12, what="raw transactions")
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 2, what="raw refund")
    on_time_minute = (latest - timedelta(minutes=3)).replace(second=0)
    late_minute = (latest - timedelta(minutes=8)).replace(second=0)
    wait_for(
        lambda: (
            scalar(
                settings,
                "select sum(transactions) from speed.product_metrics_minute where window_start = %s",
                (on_time_minute,),
            )
            == 3
        ),
        what="on-time window",
    )
    with psycopg.connect(settings.writer_dsn) as conn:
        late_rows = dict(
            conn.execute(
                "select topic, late_events from ops.late_events where event_minute = %s", (late_minute,)
            ).fetchall()
        )
        assert (
            conn.execute(
                "select count(*) from ops.late_events where event_minute <> %s", (late_minute,)
            ).fetchone()[0]
            == 0
        )
    assert late_rows == {settings.transactions_topic: 4, settings.refunds_topic: 1}
    assert (
        scalar(
            settings,
            "select count(*) from speed.product_metrics_minute where window_start = %s",
            (late_minute,),
        )
        == 0
    )

    def lake_ids(dataset: str) -> set[str]:
        try:
            return {r.event_id for r in spark.read.parquet(dataset_path(settings, dataset)).collect()}
        except Exception:  # the dataset folder appears with the lake query's first commit
            return set()

    wanted = {str(t.event_id) for t in current + on_time + late}
    wait_for(lambda: lake_ids("transactions") == wanted, what="late events in the lake")
    wanted_refunds = {str(current_refund.event_id), str(late_refund.event_id)}
    wait_for(lambda: lake_ids("refunds") == wanted_refunds, what="late refund in the lake")
