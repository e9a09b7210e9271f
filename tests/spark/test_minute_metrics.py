"""The shared SQL of both layers (spark/minute_metrics.py) on hand-made staged rows, in the batch job's
temporary tables (`create_staging_tables`): which facts count (first to land with both of its ids, in
Kafka order) and the minute aggregation (money, lines, distinct baskets, refunds)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from retail.settings import Settings
from spark.batch_job import create_staging_tables
from spark.minute_metrics import land_baskets, land_lines, land_refunds, minute_metrics

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 9, 30, 10, tzinfo=UTC)
E = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(10)]


@pytest.fixture
def cursor(platform: Settings):
    with psycopg.connect(platform.writer_dsn) as conn, conn.cursor() as cursor:
        create_staging_tables(cursor)
        yield cursor
        conn.rollback()


def _stage_basket(
    cursor: psycopg.Cursor, offset: int, event: str, basket: str, ts: datetime, lines: list
) -> None:
    cursor.execute(
        "insert into tmp_transactions (transaction_id, event_id, event_ts, store_id, channel, payment_method,"
        " line_count, schema_version, kafka_partition, kafka_offset)"
        " values (%s, %s, %s, 'S001', 'store', 'card', %s, 1, 0, %s)",
        (basket, event, ts, len(lines), offset),
    )
    for number, (product, quantity, price, discount) in enumerate(lines, 1):
        cursor.execute(
            "insert into tmp_items (transaction_id, line_number, product_id, quantity, unit_price,"
            " discount, event_ts, store_id, kafka_partition, kafka_offset)"
            " values (%s, %s, %s, %s, %s, %s, %s, 'S001', 0, %s)",
            (basket, number, product, quantity, Decimal(price), Decimal(discount), ts, offset),
        )


def test_facts_count_as_raw_lands_them_and_minutes_add_up(cursor: psycopg.Cursor) -> None:
    t31 = T0.replace(minute=31, second=0)
    _stage_basket(cursor, 0, E[1], "T1", T0, [("P0001", 2, "1.50", "0.30"), ("P0001", 1, "1.50", "0")])
    _stage_basket(cursor, 1, E[1], "T1", T0, [("P0001", 2, "1.50", "0.30"), ("P0001", 1, "1.50", "0")])
    # Another basket under a used transaction id: it does not count, nor do its lines ...
    _stage_basket(cursor, 2, E[2], "T1", T0, [("P0002", 9, "9.00", "0")])
    # ... so its event id is still free, for the next basket that uses it (raw's order decides).
    _stage_basket(cursor, 3, E[2], "T2", T0.replace(second=59), [("P0001", 1, "2.00", "0")])
    _stage_basket(cursor, 4, E[3], "T2", t31, [("P0002", 1, "1.00", "0")])  # a used transaction id
    _stage_basket(cursor, 5, E[4], "T3", t31, [("P0001", 5, "1.00", "0")])
    for offset, (refund, event) in enumerate((("R1", E[5]), ("R1", E[5]), ("R1", E[6]), ("R2", E[6]))):
        cursor.execute(
            "insert into tmp_refunds (refund_id, event_id, transaction_id, product_id, quantity, amount,"
            " reason, event_ts, schema_version, kafka_partition, kafka_offset)"
            " values (%s, %s, 'T1', 'P0001', 1, 1.50, 'damaged', %s, 1, 0, %s)",
            (refund, event, t31.replace(second=5), offset),
        )

    cursor.execute(
        f"with inserted as ({land_baskets('tmp_transactions', 'counted_transactions')}) "
        f"{land_lines('tmp_items', 'inserted', 'counted_transaction_items')}"
    )
    cursor.execute(land_refunds("tmp_refunds", "counted_refunds"))
    counted = "select transaction_id, event_id::text from counted_transactions order by 1"
    assert cursor.execute(counted).fetchall() == [
        ("T1", E[1]),
        ("T2", E[2]),
        ("T3", E[4]),
    ]
    assert cursor.execute("select count(*) from counted_transaction_items").fetchone() == (4,)
    assert cursor.execute("select refund_id, event_id::text from counted_refunds order by 1").fetchall() == [
        ("R1", E[5]),
        ("R2", E[6]),
    ]

    aggregate = minute_metrics("counted_transaction_items", "counted_refunds")
    metrics = cursor.execute(f"{aggregate} order by 1, 2").fetchall()
    assert metrics == [
        (T0.replace(second=0), "P0001", 4, Decimal("6.50"), Decimal("0.30"), 2, 0, Decimal("0.00")),
        (t31, "P0001", 5, Decimal("5.00"), Decimal("0.00"), 1, 2, Decimal("3.00")),
    ]
