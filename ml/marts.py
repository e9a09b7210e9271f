"""Reading what the ML jobs need from the dbt marts (never the raw tables).

Aggregation happens in PostgreSQL (one row per customer, one row per basket line) so only compact frames
cross the wire: 100k customers or 200k baskets stay a few MB in pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import psycopg

# Per customer: last purchase, distinct baskets, net revenue. fct_sales.net_amount is paid minus the
# refunds fct_refunds allocated to the line, so the sum is revenue net of refunds.
CUSTOMER_SALES_SQL = """
select
    customer_id,
    max(sold_at) as last_purchase_at,
    count(distinct transaction_id) as frequency,
    sum(net_amount) as monetary
from marts.fct_sales
where customer_id is not null
group by customer_id
order by customer_id
"""

# Distinct products per basket, leaving out baskets with more distinct products than the cap.
BASKET_ITEMS_SQL = """
with items as (
    select distinct transaction_id, product_id
    from marts.fct_sales
),
sizes as (
    select transaction_id, count(*) as products
    from items
    group by transaction_id
)
select items.transaction_id, items.product_id
from items
join sizes on sizes.transaction_id = items.transaction_id
where sizes.products <= %(max_lines)s
order by items.transaction_id, items.product_id
"""


@dataclass(frozen=True)
class DataWindow:
    """Earliest and latest sale in fct_sales; `end` is the analysis time of a run."""

    start: datetime | None
    end: datetime | None
    baskets: int


def data_window(conn: psycopg.Connection) -> DataWindow:
    row = conn.execute(
        "select min(sold_at), max(sold_at), count(distinct transaction_id) from marts.fct_sales"
    ).fetchone()
    assert row is not None
    return DataWindow(row[0], row[1], row[2])


def customer_sales(conn: psycopg.Connection) -> pd.DataFrame:
    """One row per loyalty customer: customer_id, last_purchase_at (UTC), frequency, monetary (float)."""
    with conn.cursor() as cursor:
        cursor.execute(CUSTOMER_SALES_SQL)
        rows = cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["customer_id", "last_purchase_at", "frequency", "monetary"])
    frame["last_purchase_at"] = pd.to_datetime(frame["last_purchase_at"], utc=True)
    frame["frequency"] = frame["frequency"].astype("int64")
    frame["monetary"] = frame["monetary"].astype("float64")
    return frame


def basket_items(conn: psycopg.Connection, max_lines: int) -> tuple[pd.DataFrame, int]:
    """(transaction_id, product_id) pairs of every basket within the cap, and the count left out."""
    with conn.cursor() as cursor:
        cursor.execute(BASKET_ITEMS_SQL, {"max_lines": max_lines})
        frame = pd.DataFrame(cursor.fetchall(), columns=["transaction_id", "product_id"])
    dropped = conn.execute(
        "select count(*) from (select transaction_id from marts.fct_sales group by transaction_id"
        " having count(distinct product_id) > %s) as large",
        (max_lines,),
    ).fetchone()
    return frame, int(dropped[0]) if dropped else 0


def product_names(conn: psycopg.Connection) -> dict[str, str]:
    """Current name of every product (dim_products is SCD2: one current version per product)."""
    rows = conn.execute("select product_id, product_name from marts.dim_products where is_current").fetchall()
    return dict(rows)
