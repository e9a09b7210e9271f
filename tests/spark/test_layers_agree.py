"""Both layers on the same events give the same minute metrics: the stream's speed table and the batch
job's recompute from the lake, with repeated events, a second event under a used transaction or refund
id, events out of order within the watermark and events beyond it. Only the late ones differ: the
batch layer has them, the speed layer leaves them out."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.contracts import LineItem
from retail.settings import Settings
from spark import batch_job
from spark.lake import dataset_path
from spark.streaming_job import start_queries
from tests.spark.conftest import (
    lake_count,
    load_dimensions,
    module_settings,
    scalar,
    truncate_speed_tables,
)
from tests.spark.events import now_minute, refund, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

_METRICS = "window_start, product_id, units, gross_revenue, discount, transactions, refunds, refund_amount"


def _table(settings: Settings, name: str) -> dict[tuple, tuple]:
    with psycopg.connect(settings.writer_dsn) as conn:
        rows = conn.execute(f"select {_METRICS} from {name}").fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _metrics_of(baskets: list, refunds: list) -> dict[tuple, tuple]:
    """The minute metrics of the given events, in plain Python (each event counted once)."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0, 0, Decimal(0)])
    for basket in baskets:
        minute = basket.event_ts.replace(second=0, microsecond=0)
        for product in {line.product_id for line in basket.items}:
            totals[(minute, product)][3] += 1
        for line in basket.items:
            row = totals[(minute, line.product_id)]
            row[0] += line.quantity
            row[1] += line.quantity * line.unit_price
            row[2] += line.discount
    for returned in refunds:
        row = totals[(returned.event_ts.replace(second=0, microsecond=0), returned.product_id)]
        row[4] += 1
        row[5] += returned.amount
    return {key: tuple(value) for key, value in totals.items()}


def _plus(left: dict, right: dict) -> dict:
    keys = left.keys() | right.keys()
    zero = (0, Decimal(0), Decimal(0), 0, 0, Decimal(0))
    return {k: tuple(a + b for a, b in zip(left.get(k, zero), right.get(k, zero), strict=True)) for k in keys}


def test_speed_and_batch_layers_agree_on_the_same_events(
    platform: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    settings = module_settings(platform, tmp_path, "agree")
    truncate_speed_tables(settings)
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute("truncate batch.product_metrics_minute, batch.closed_hours")
    load_dimensions(settings)
    rng = random.Random(15)
    latest = now_minute() + timedelta(seconds=30)

    current = [transaction(rng, latest - timedelta(seconds=5 * i)) for i in range(30)]
    current_refunds = [refund(rng, b, latest) for b in current[:6]]
    # Out of order but within the watermark (both layers count them) and beyond it (only the batch).
    on_time = [transaction(rng, latest - timedelta(minutes=3, seconds=i)) for i in range(8)]
    on_time_refunds = [refund(rng, b, latest - timedelta(minutes=3)) for b in current[6:9]]
    late = [transaction(rng, latest - timedelta(minutes=9, seconds=i)) for i in range(6)]
    late_refunds = [refund(rng, b, latest - timedelta(minutes=9)) for b in late[:2]]
    # A second event under a used transaction or refund id: dead-lettered, counted by neither layer.
    reused_basket = current[0].model_copy(
        update={
            "event_id": uuid.uuid4(),
            "items": [
                LineItem(product_id="P0001", quantity=7, unit_price=Decimal("3"), discount=Decimal("0"))
            ],
        }
    )
    reused_refund = current_refunds[0].model_copy(update={"event_id": uuid.uuid4()})

    queries = start_queries(spark, settings)
    try:
        # Every current event twice (a redelivery: same event id), the second copy in the same send.
        send_events(settings, current + current[:5], current_refunds + current_refunds[:2])
        wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 30, what="current")
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 6, what="current refunds")
        # Redeliveries and reused ids in later batches, then the out-of-order and late events.
        send_events(settings, [*current[5:8], reused_basket], [current_refunds[3], reused_refund])
        send_events(settings, on_time + late + late[:1], on_time_refunds + late_refunds)
        wait_for(lambda: scalar(settings, "select count(*) from raw.transactions") == 44, what="raw baskets")
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 11, what="raw refunds")
        wait_for(
            lambda: scalar(settings, "select count(*) from ops.dead_letter") == 2,
            what="reused ids dead-lettered",
        )
        # The lake holds every valid event, redeliveries included.
        lake = Path(dataset_path(settings, "transactions"))
        wait_for(lambda: lake_count(spark, lake) == 44 + 5 + 3 + 1, what="lake baskets")
        refunds_lake = Path(dataset_path(settings, "refunds"))
        wait_for(lambda: lake_count(spark, refunds_lake) == 11 + 2 + 1, what="lake refunds")
    finally:
        for query in queries:
            query.stop()

    assert scalar(settings, "select sum(late_events) from ops.late_events") == len(late) + len(late_refunds)
    speed = _table(settings, "speed.product_metrics_minute")
    assert speed == _metrics_of(current + on_time, current_refunds + on_time_refunds)

    first = batch_job.floor_hour(min(e.event_ts for e in late))
    hours = batch_job.HourRange(first, batch_job.floor_hour(latest) + timedelta(hours=1))
    batch_job.run(spark, settings, hours, run_id="agree")
    batch = _table(settings, "batch.product_metrics_minute")
    # Identical tables but for the late events' windows, where the batch layer adds exactly them.
    assert batch == _plus(speed, _metrics_of(late, late_refunds))
    assert {k for k in batch if batch[k] != speed.get(k)} == set(_metrics_of(late, late_refunds))
