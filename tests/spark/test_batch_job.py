"""The batch recompute (spark/batch_job.py) against a lake written with the stream's own functions.

The lake is built the way the stream builds it (validate -> parse -> split -> event_date partitions),
from known events that include repeated event ids and refunds; the expected minute metrics are summed in
plain Python from the same events, independently of Spark.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.settings import Settings
from spark import batch_job
from spark.arrow_rows import split_batch
from spark.kafka_source import KAFKA_COLUMNS_DDL
from spark.lake import dataset_path
from spark.transformations import parsed_or_rejected, validate_messages, with_event_date
from spark.validation import StaticDimensions
from tests.spark.events import PRODUCTS, STORES, backfill

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 2, 22, 0, tzinfo=UTC)  # two hours across midnight: two event_date partitions
HOURS = batch_job.HourRange(START, START + timedelta(hours=2))


def write_lake(spark: SparkSession, settings: Settings, events: list, dataset: str) -> None:
    # Each record stamped when its event happened, as a producer's broker would.
    rows = [(None, e.model_dump_json().encode(), "t", 0, i, e.event_ts, 0) for i, e in enumerate(events)]
    messages = spark.createDataFrame(rows, KAFKA_COLUMNS_DDL)
    dimensions = StaticDimensions(frozenset(PRODUCTS), frozenset(STORES))
    event_type = "transaction" if dataset == "transactions" else "refund"
    validated = validate_messages(messages, event_type, dimensions)
    valid = split_batch(parsed_or_rejected(validated, event_type).toArrow()).events
    parsed = with_event_date(spark.createDataFrame(valid))
    parsed.write.mode("append").partitionBy("event_date").parquet(dataset_path(settings, dataset))


def expected_metrics(baskets: list, refunds: list, hours: batch_job.HourRange) -> dict:
    totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0, 0, Decimal(0)])
    seen: set = set()
    for basket in baskets:
        if basket.event_id in seen or not hours.start <= basket.event_ts < hours.end:
            continue
        seen.add(basket.event_id)
        minute = basket.event_ts.replace(second=0, microsecond=0)
        products_seen: set[str] = set()
        for line in basket.items:
            row = totals[(minute, line.product_id)]
            row[0] += line.quantity
            row[1] += line.quantity * line.unit_price
            row[2] += line.discount
            row[3] += line.product_id not in products_seen
            products_seen.add(line.product_id)
    for refund in refunds:
        if refund.event_id in seen or not hours.start <= refund.event_ts < hours.end:
            continue
        seen.add(refund.event_id)
        row = totals[(refund.event_ts.replace(second=0, microsecond=0), refund.product_id)]
        row[4] += 1
        row[5] += refund.amount
    return {key: tuple(value) for key, value in totals.items()}


def batch_rows(settings: Settings) -> dict:
    with psycopg.connect(settings.writer_dsn) as conn:
        rows = conn.execute(
            "select window_start, product_id, units, gross_revenue, discount, transactions, refunds,"
            " refund_amount from batch.product_metrics_minute"
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def snapshot(settings: Settings) -> list[tuple]:
    with psycopg.connect(settings.writer_dsn) as conn:
        return conn.execute(
            "select m.*, h.* from batch.product_metrics_minute m"
            " full join batch.closed_hours h on false order by 1, 2, 11"
        ).fetchall()


@pytest.fixture
def lake_settings(platform: Settings, tmp_path) -> Settings:
    settings = platform.model_copy(update={"lake_uri": str(tmp_path / "lake")})
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute("truncate batch.product_metrics_minute, batch.closed_hours")
    return settings


def test_recompute_equals_the_events_and_reruns_change_nothing(
    spark: SparkSession, lake_settings: Settings
) -> None:
    # Three hours of events: the job must keep to the two asked for.
    baskets, refunds = backfill(7, 400, START - timedelta(minutes=30), timedelta(hours=3), refund_share=0.2)
    repeated = baskets[:15] + refunds[:3]  # the producer's deliberate duplicates
    write_lake(spark, lake_settings, baskets + [e for e in repeated if e in baskets], "transactions")
    write_lake(spark, lake_settings, refunds + [e for e in repeated if e in refunds], "refunds")

    first = batch_job.run(spark, lake_settings, HOURS, run_id="first")
    expected = expected_metrics(baskets, refunds, HOURS)
    assert batch_rows(lake_settings) == expected
    assert first.inserted == len(expected) and first.updated == first.deleted == 0
    with psycopg.connect(lake_settings.writer_dsn) as conn:
        closed = [r[0] for r in conn.execute("select hour_start from batch.closed_hours order by 1")]
    assert closed == HOURS.hours()

    before = snapshot(lake_settings)
    again = batch_job.run(spark, lake_settings, HOURS, run_id="second")
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    assert snapshot(lake_settings) == before


def test_a_late_event_in_the_lake_updates_only_its_window(
    spark: SparkSession, lake_settings: Settings
) -> None:
    baskets, refunds = backfill(8, 100, START, timedelta(hours=2), refund_share=0.1)
    write_lake(spark, lake_settings, baskets, "transactions")
    write_lake(spark, lake_settings, refunds, "refunds")
    batch_job.run(spark, lake_settings, HOURS, run_id="first")

    late, _ = backfill(9, 1, START + timedelta(minutes=10, seconds=5), timedelta(seconds=1))
    write_lake(spark, lake_settings, late, "transactions")
    result = batch_job.run(spark, lake_settings, HOURS, run_id="late")
    assert batch_rows(lake_settings) == expected_metrics(baskets + late, refunds, HOURS)
    touched = {(START + timedelta(minutes=10), line.product_id) for line in late[0].items}
    assert result.inserted + result.updated == len(touched)
    with psycopg.connect(lake_settings.writer_dsn) as conn:
        changed = {
            (r[0], r[1])
            for r in conn.execute(
                "select window_start, product_id from batch.product_metrics_minute"
                " where batch_run_id = 'late'"
            )
        }
    assert changed == touched


def test_closed_hours_follow_the_lookback_and_close_delay(platform: Settings) -> None:
    settings = platform.model_copy(update={"batch_lookback_hours": 3, "batch_close_delay_min": 10})
    as_of = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    hours = batch_job.closed_hours(settings, as_of)
    assert (hours.start, hours.end) == (as_of.replace(hour=9, minute=0), as_of.replace(hour=12, minute=0))
    assert batch_job.closed_hours(settings, as_of.replace(minute=15)).end == as_of.replace(minute=0)


def test_bad_ranges_name_the_fix(platform: Settings) -> None:
    with pytest.raises(batch_job.BatchJobError, match="whole UTC hour"):
        batch_job.HourRange(START + timedelta(minutes=5), START + timedelta(hours=1))
    with pytest.raises(batch_job.BatchJobError, match="empty hour range"):
        batch_job.HourRange(START, START)


def test_missing_lake_with_raw_events_refuses_to_close_hours(
    spark: SparkSession, lake_settings: Settings
) -> None:
    with psycopg.connect(lake_settings.writer_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into raw.transactions (transaction_id, event_id, event_ts, store_id, channel,"
            " payment_method, line_count, schema_version, kafka_partition, kafka_offset)"
            " values ('T-batch-missing-lake', gen_random_uuid(), %s, 'S001', 'store', 'card', 1, 1, 0, 0)",
            (START + timedelta(minutes=1),),
        )
        try:
            with pytest.raises(
                batch_job.BatchJobError, match=r"lake has 0 transactions events .* raw\.transactions has 1"
            ):
                batch_job.run(spark, lake_settings, HOURS)
        finally:
            conn.execute("delete from raw.transactions where transaction_id = 'T-batch-missing-lake'")
    with psycopg.connect(lake_settings.writer_dsn) as conn:
        assert conn.execute("select count(*) from batch.closed_hours").fetchone()[0] == 0


def test_a_default_run_closes_every_hour_with_late_events_whatever_its_age(
    spark: SparkSession, lake_settings: Settings
) -> None:
    settings = lake_settings.model_copy(update={"batch_stream_quiet_s": 0, "batch_lookback_hours": 1})
    old_hour = datetime(2025, 3, 9, 14, tzinfo=UTC)
    as_of = old_hour + timedelta(hours=3, minutes=15)  # lookback: 16:00-17:00, the old hour is before it
    old = batch_job.HourRange(old_hour, old_hour + timedelta(hours=1))
    baskets, refunds = backfill(11, 60, old_hour, timedelta(minutes=50), refund_share=0.1)
    write_lake(spark, settings, baskets, "transactions")
    write_lake(spark, settings, refunds, "refunds")
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute("truncate ops.late_events")
        conn.execute(
            "insert into ops.late_events (event_minute, topic, late_events) values (%s, 'transactions', 60)",
            (old_hour + timedelta(minutes=7),),
        )
    try:
        plan = batch_job.planned_hours(settings, as_of)
        assert plan.late_hours == (old_hour,)
        batch_job.run(spark, settings, plan, run_id="with-late-hours")
        assert {
            key: row for key, row in batch_rows(settings).items() if key[0] < old.end
        } == expected_metrics(baskets, refunds, old)
        # Closed once: nothing new came late, so the next run leaves the old hour alone ...
        assert batch_job.planned_hours(settings, as_of).late_hours == ()
        # ... until more late events of it are counted.
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            conn.execute("update ops.late_events set late_events = 61, updated_at = clock_timestamp()")
        assert batch_job.planned_hours(settings, as_of).late_hours == (old_hour,)
    finally:
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            conn.execute("truncate ops.late_events")


def test_hours_close_only_once_the_stream_has_landed_past_them(platform: Settings) -> None:
    from spark.hours import plan_closing

    settings = platform.model_copy(update={"batch_close_delay_min": 10, "batch_stream_quiet_s": 120})
    as_of = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    with psycopg.connect(settings.writer_dsn) as conn:  # rolled back at the end: no trace left
        conn.execute("delete from ops.stream_watermarks")
        assert plan_closing(settings, conn, as_of).lookback_end == as_of.replace(hour=12, minute=0)
        # A stream landing a backlog (committed just now) has reached 09:40 in event time only.
        conn.execute(
            "insert into ops.stream_watermarks (watermark_name, max_event_ts, updated_at)"
            " values ('events', %s, clock_timestamp())",
            (as_of.replace(hour=9, minute=40),),
        )
        assert plan_closing(settings, conn, as_of).lookback_end == as_of.replace(hour=9, minute=0)
        # A quiet stream (nothing committed for longer than the quiet time) holds nothing back.
        conn.execute("update ops.stream_watermarks set updated_at = clock_timestamp() - interval '1 hour'")
        assert plan_closing(settings, conn, as_of).lookback_end == as_of.replace(hour=12, minute=0)
        conn.rollback()
