"""The small deterministic dataset the dbt tests build the marts over.

A refund (allocated to the first of two lines of its product), a guest basket with a refund, a basket
that lands late (added by the incremental test), an hour the batch layer closed and one it did not,
and a speed-layer window that missed a late event.
"""

from __future__ import annotations

import psycopg

FACT_TABLES = (
    "raw.transactions",
    "raw.transaction_items",
    "raw.refunds",
    "speed.product_metrics_minute",
    "batch.product_metrics_minute",
    "batch.closed_hours",
    "ops.late_events",
)

STORES = [
    ("S01", "Retail New York", "New York", "Northeast", 40.75, -73.98, "2010-01-01", 900, "express"),
    ("S02", "Retail San Francisco", "San Francisco", "West", 37.77, -122.42, "2015-06-01", 2500, None),
]
PRODUCTS = [
    ("P1", "SKU-1", "Coffee 500g", "Coffee", "Bellavita", "6.00", "10.00"),
    ("P2", "SKU-2", "Mug", "Kitchen", "Nova", "2.00", "5.00"),
    ("P3", "SKU-3", "Green Tea", "Tea", "Bellavita", "1.50", "4.00"),
]
# (transaction_id, event_ts, store_id, customer_id, channel, payment_method, lines)
# lines: (product_id, quantity, unit_price, discount)
BASKETS = [
    (
        "T1",
        "2026-11-02 10:05:10+00",
        "S01",
        "C1",
        "store",
        "card",
        [("P1", 2, "10.00", "2.00"), ("P2", 1, "5.00", "0.00"), ("P1", 1, "10.00", "0.00")],
    ),
    ("T2", "2026-11-02 10:20:30+00", "S02", None, "store", "cash", [("P3", 3, "4.00", "0.00")]),
    ("T3", "2026-11-02 11:10:00+00", "S01", "C2", "online", "card", [("P2", 2, "5.00", "1.00")]),
    (
        "T4",
        "2026-11-03 09:00:00+00",
        "S02",
        "C1",
        "mobile_app",
        "mobile_wallet",
        [("P1", 1, "10.00", "0.00"), ("P3", 1, "4.00", "0.50")],
    ),
]
# A basket of the closed hour 10:00 that the stream drops as late; added by the incremental test.
LATE_BASKET = ("T5", "2026-11-02 10:30:00+00", "S02", "C2", "store", "card", [("P2", 4, "5.00", "0.00")])
# (refund_id, transaction_id, product_id, quantity, amount, reason, event_ts)
REFUNDS = [
    ("R1", "T1", "P1", 1, "12.00", "damaged", "2026-11-03 12:00:00+00"),
    ("R2", "T2", "P3", 1, "4.00", "changed_mind", "2026-11-02 15:00:00+00"),
]
LATE_REFUND = ("R3", "T3", "P2", 1, "5.00", "wrong_item", "2026-11-03 13:00:00+00")
METRICS = "window_start, product_id, units, gross_revenue, discount, transactions, refunds, refund_amount"
# Hour 10:00 of 2026-11-02 is closed by batch run b1; hour 11:00 is not. The stream missed one unit of
# P3 at 10:20 (a late event), so speed and batch differ there. Refunds count in their own windows.
BATCH_ROWS = [
    ("2026-11-02 10:05:00+00", "P1", 3, "30.00", "2.00", 1, 0, "0.00"),
    ("2026-11-02 10:05:00+00", "P2", 1, "5.00", "0.00", 1, 0, "0.00"),
    ("2026-11-02 10:20:00+00", "P3", 3, "12.00", "0.00", 1, 0, "0.00"),
]
SPEED_ROWS = [
    ("2026-11-02 10:05:00+00", "P1", 3, "30.00", "2.00", 1, 0, "0.00"),
    ("2026-11-02 10:05:00+00", "P2", 1, "5.00", "0.00", 1, 0, "0.00"),
    ("2026-11-02 10:20:00+00", "P3", 2, "8.00", "0.00", 1, 0, "0.00"),
    ("2026-11-02 11:10:00+00", "P2", 2, "10.00", "1.00", 1, 0, "0.00"),
    ("2026-11-02 15:00:00+00", "P3", 0, "0.00", "0.00", 0, 1, "4.00"),
]
CLOSED_HOURS = [("2026-11-02 10:00:00+00", "b1")]
# The stream counted the unit it missed at 10:20 as a late event.
LATE_EVENTS = [("2026-11-02 10:20:00+00", "transactions", 1)]
LANDING_COLUMNS = (
    ("raw.transactions", "ingested_at"),
    ("raw.transaction_items", "ingested_at"),
    ("raw.refunds", "ingested_at"),
    ("speed.product_metrics_minute", "updated_at"),
    ("batch.product_metrics_minute", "computed_at"),
    ("batch.closed_hours", "closed_at"),
    ("ops.late_events", "updated_at"),
)


def insert_basket(conn: psycopg.Connection, basket: tuple) -> None:
    transaction_id, event_ts, store_id, customer_id, channel, payment_method, lines = basket
    conn.execute(
        "insert into raw.transactions (transaction_id, event_id, event_ts, store_id, customer_id, channel,"
        " payment_method, line_count, schema_version)"
        " values (%s, gen_random_uuid(), %s, %s, %s, %s, %s, %s, 1)",
        (transaction_id, event_ts, store_id, customer_id, channel, payment_method, len(lines)),
    )
    for number, (product_id, quantity, unit_price, discount) in enumerate(lines, start=1):
        conn.execute(
            "insert into raw.transaction_items (transaction_id, line_number, product_id, quantity,"
            " unit_price, discount, event_ts, store_id) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (transaction_id, number, product_id, quantity, unit_price, discount, event_ts, store_id),
        )


def insert_refund(conn: psycopg.Connection, refund: tuple) -> None:
    conn.execute(
        "insert into raw.refunds (refund_id, event_id, transaction_id, product_id, quantity, amount, reason,"
        " event_ts, schema_version) values (%s, gen_random_uuid(), %s, %s, %s, %s, %s, %s, 1)",
        refund,
    )


DBT_SCHEMAS = ("staging", "intermediate", "snapshots", "marts")


def drop_marts(conn: psycopg.Connection) -> None:
    """Everything dbt built, in every layer's schema (views first: they depend on tables)."""
    relations = conn.execute(
        "select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind in ('r', 'v') order by c.relkind desc",
        (list(DBT_SCHEMAS),),
    ).fetchall()
    for schema, name, kind in relations:
        conn.execute(f'drop {"view" if kind == "v" else "table"} if exists {schema}."{name}" cascade')


def load_dataset(conn: psycopg.Connection) -> None:
    conn.execute(f"truncate {', '.join(FACT_TABLES)}, raw.products, raw.stores")
    drop_marts(conn)
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into raw.stores (store_id, name, city, region, latitude, longitude, opened_on,"
            " square_meters, format) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            STORES,
        )
        cursor.executemany(
            "insert into raw.products (product_id, sku, name, category, brand, unit_cost, base_price)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            PRODUCTS,
        )
        cursor.executemany(
            f"insert into batch.product_metrics_minute ({METRICS}, batch_run_id)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, 'b1')",
            BATCH_ROWS,
        )
        cursor.executemany(
            f"insert into speed.product_metrics_minute ({METRICS}) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            SPEED_ROWS,
        )
        cursor.executemany(
            "insert into batch.closed_hours (hour_start, batch_run_id) values (%s, %s)", CLOSED_HOURS
        )
        cursor.executemany(
            "insert into ops.late_events (event_minute, topic, late_events) values (%s, %s, %s)", LATE_EVENTS
        )
    for basket in BASKETS:
        insert_basket(conn, basket)
    for refund in REFUNDS:
        insert_refund(conn, refund)
    # Landed hours ago, T3 last: the other baskets are beyond the incremental lookback (1 hour before
    # the latest landing), so the incremental test sees which rows a run rebuilds; all are within the
    # data tests' lookback (1 day), so the tests check them.
    for table, column in LANDING_COLUMNS:
        conn.execute(f"update {table} set {column} = now() - interval '5 hours'")
    for table in ("raw.transactions", "raw.transaction_items"):
        conn.execute(
            f"update {table} set ingested_at = now() - interval '3 hours' where transaction_id = 'T3'"
        )
