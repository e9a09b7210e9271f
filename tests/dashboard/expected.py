"""Figures computed straight from the raw facts, independently of the marts and of dashboard/queries.py:
what each KPI the dashboard shows must equal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import psycopg

SALES = """
select coalesce(sum(i.quantity * i.unit_price - i.discount), 0), coalesce(sum(i.quantity), 0),
       count(distinct i.transaction_id), count(distinct t.customer_id), count(distinct i.product_id)
from raw.transaction_items as i
join raw.transactions as t using (transaction_id)
where i.event_ts >= %(start)s and i.event_ts < %(end)s
"""
# Refunds count when they are made, once their basket has landed (before that no store is known).
REFUNDS = """
select coalesce(sum(r.amount), 0), count(*)
from raw.refunds as r
where r.event_ts >= %(start)s and r.event_ts < %(end)s
  and exists (select 1 from raw.transactions as t where t.transaction_id = r.transaction_id)
"""


def overview(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[str, float]:
    window = {"start": start, "end": end}
    revenue, _, transactions, customers, _ = conn.execute(SALES, window).fetchone()
    refunds, _ = conn.execute(REFUNDS, window).fetchone()
    revenue, refunds = float(revenue), float(refunds)
    return {
        "revenue": revenue,
        "net_revenue": revenue - refunds,
        "refunds": refunds,
        "refund_rate": refunds / revenue if revenue else 0.0,
        "transactions": transactions,
        "average_basket_value": revenue / transactions if transactions else 0.0,
        "active_customers": customers,
    }


def sales(conn: psycopg.Connection, start: datetime, end: datetime) -> tuple[Decimal, int, int]:
    revenue, units, _, _, products = conn.execute(SALES, {"start": start, "end": end}).fetchone()
    return revenue, units, products


def refunds(conn: psycopg.Connection, start: datetime, end: datetime) -> tuple[Decimal, int, Decimal]:
    amount, number = conn.execute(REFUNDS, {"start": start, "end": end}).fetchone()
    revenue = conn.execute(SALES, {"start": start, "end": end}).fetchone()[0]
    return amount, number, revenue


def net_revenue_by_region(conn: psycopg.Connection, start: datetime, end: datetime) -> dict[str, Decimal]:
    rows = conn.execute(
        """
        with sold as (
            select s.region, sum(i.quantity * i.unit_price - i.discount) as amount
            from raw.transaction_items as i join raw.stores as s using (store_id)
            where i.event_ts >= %(start)s and i.event_ts < %(end)s group by 1
        ),
        refunded as (
            select s.region, sum(r.amount) as amount
            from raw.refunds as r
            join raw.transactions as t using (transaction_id)
            join raw.stores as s on s.store_id = t.store_id
            where r.event_ts >= %(start)s and r.event_ts < %(end)s group by 1
        )
        select s.region, coalesce(sold.amount, 0) - coalesce(refunded.amount, 0)
        from (select distinct region from raw.stores) as s
        left join sold using (region) left join refunded using (region)
        """,
        {"start": start, "end": end},
    ).fetchall()
    return dict(rows)


def loyalty_customers(conn: psycopg.Connection) -> tuple[int, Decimal]:
    """Loyalty customers and their net value (paid minus every refund of their baskets)."""
    return conn.execute(
        """
        select count(distinct t.customer_id),
               (select sum(i.quantity * i.unit_price - i.discount)
                from raw.transaction_items as i join raw.transactions as t2 using (transaction_id)
                where t2.customer_id is not null)
               - (select coalesce(sum(r.amount), 0)
                  from raw.refunds as r join raw.transactions as t3 using (transaction_id)
                  where t3.customer_id is not null)
        from raw.transactions as t where t.customer_id is not null
        """
    ).fetchone()


def baskets_with(conn: psycopg.Connection, products: list[str], max_lines: int) -> tuple[int, int]:
    """(baskets holding every product, all baskets) among baskets of at most max_lines distinct products."""
    return conn.execute(
        """
        with baskets as (
            select transaction_id, array_agg(distinct product_id) as products
            from raw.transaction_items group by 1
            having count(distinct product_id) <= %(max_lines)s
        )
        select count(*) filter (where products @> %(wanted)s::text[]), count(*) from baskets
        """,
        {"wanted": products, "max_lines": max_lines},
    ).fetchone()


def minute_windows(conn: psycopg.Connection, start: datetime, end: datetime) -> tuple[int, int]:
    """(provisional, all) minute windows with a sale or refund in [start, end); a window is final when
    its hour is in batch.closed_hours."""
    return conn.execute(
        """
        with windows as (
            select date_trunc('minute', event_ts) as window_start from raw.transaction_items
            where event_ts >= %(start)s and event_ts < %(end)s
            union
            select date_trunc('minute', event_ts) from raw.refunds
            where event_ts >= %(start)s and event_ts < %(end)s
        )
        select count(*) filter (
                   where date_trunc('hour', window_start) not in (select hour_start from batch.closed_hours)),
               count(*)
        from windows
        """,
        {"start": start, "end": end},
    ).fetchone()
