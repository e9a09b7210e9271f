"""One event-time watermark per topic: a refunds topic that lags the transactions topic by 10 minutes of
event time loses nothing to lateness, and ops.stream_progress shows each raw query's own watermark."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pyspark.sql import SparkSession

from retail.settings import Settings
from spark.progress_listener import ProgressRecorder
from spark.streaming_job import RAW_REFUNDS, RAW_TRANSACTIONS, start_queries
from spark.transformations import WATERMARK_DELAY_S
from tests.spark.conftest import load_dimensions, module_settings, scalar, truncate_speed_tables
from tests.spark.events import now_minute, refund, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    settings = module_settings(platform, tmp_path_factory.mktemp("watermark"), "watermark")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    recorder = ProgressRecorder(
        settings.writer_dsn,
        {RAW_TRANSACTIONS: settings.transactions_topic, RAW_REFUNDS: settings.refunds_topic},
    )
    spark.streams.addListener(recorder)
    queries = start_queries(spark, settings, (RAW_TRANSACTIONS, RAW_REFUNDS))
    try:
        yield settings
    finally:
        for query in queries:
            query.stop()
        spark.streams.removeListener(recorder)


def test_refunds_lagging_ten_minutes_lose_nothing_to_lateness(running: Settings) -> None:
    settings = running
    rng = random.Random(21)
    latest = now_minute()
    # Transactions run 10 minutes of event time ahead of their refunds.
    baskets = [
        transaction(rng, latest - timedelta(minutes=12) + timedelta(seconds=10 * i)) for i in range(72)
    ]
    send_events(settings, baskets)
    wait_for(
        lambda: scalar(settings, "select count(*) from raw.transactions") == len(baskets), what="baskets"
    )

    refunds = [refund(rng, b, b.event_ts + timedelta(seconds=5)) for b in baskets[:12]]
    # In two rounds, so the second is judged against the refunds' own watermark from the first.
    send_events(settings, refunds=refunds[6:])
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 6, what="first refunds")
    send_events(settings, refunds=refunds[:6])
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 12, what="every refund")

    wait_for(
        lambda: scalar(settings, "select sum(refunds) from speed.product_metrics_minute") == len(refunds),
        what="every refund in the minute metrics",
    )
    assert scalar(settings, "select count(*) from ops.late_events") == 0
    assert scalar(settings, "select sum(refund_amount) from speed.product_metrics_minute") == sum(
        r.amount for r in refunds
    )

    delay = timedelta(seconds=WATERMARK_DELAY_S)
    newest = {
        RAW_TRANSACTIONS: max(b.event_ts for b in baskets) - delay,
        RAW_REFUNDS: max(r.event_ts for r in refunds) - delay,
    }
    for query, watermark in newest.items():
        wait_for(
            lambda query=query, watermark=watermark: (
                scalar(
                    settings,
                    "select watermark from ops.stream_progress where query_name = %s"
                    " order by reported_at desc, batch_id desc limit 1",
                    (query,),
                )
                == watermark
            ),
            timeout_s=60,
            what=f"{query}'s own watermark in ops.stream_progress",
        )
