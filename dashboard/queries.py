"""Every SQL statement of the dashboard: small named functions over marts, ml and ops, parameterized
and cached for a short time (Streamlit's cache is shared by all sessions of the server).

Sales and refunds come from the live relations (`*_live`: the built marts plus what the stream landed
since their last build, README "Live serving"), so a basket counts seconds after it lands. Time-scoped
figures read whole UTC days from the live daily rollups and only the partial days at the scope's edges
from the line-level facts, so a 7-day scope costs little more than a 15-minute one at millions of lines.
Nothing here recomputes what a mart already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.db import read_frame, settings
from dashboard.time_scope import Scope

# Live panels refresh every RETAIL_DASHBOARD_REFRESH_S (default 10 s): their data lives shorter than that.
LIVE_TTL_S = 5
# Rollups, ML outputs and dimensions change at most hourly.
SLOW_TTL_S = 60


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _live(dsn: str, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return read_frame(sql, params)


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def _slow(dsn: str, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return read_frame(sql, params)


def live(sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Cached per server (the DSN is part of the key) for LIVE_TTL_S."""
    return _live(settings().analyst_dsn, sql, params)


def slow(sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    return _slow(settings().analyst_dsn, sql, params)


# Sale lines of the partial days at the edges of a scope (whole days come from the rollups). They lie on
# the scope's first or last date (a scope spanning three dates has a whole day in the middle), which the
# sale_date index finds without reading the whole days in between.
_EDGE_LINES = """
    select *
    from marts.fct_sales_live
    where sale_date in (%(first_day)s, %(last_day)s)
      and sold_at >= %(start)s and sold_at < %(end)s
      and not (sold_at >= %(day_from_ts)s and sold_at < %(day_to_ts)s)
"""

# Paid units and revenue per day, store and product inside a scope.
_SCOPED_SALES = f"""
    scoped_sales as (
        select activity_date as sale_day, store_id, product_id, units_sold as units,
               gross_amount - discount_amount as revenue
        from marts.agg_sales_daily_live
        where activity_date >= %(day_from)s and activity_date < %(day_to)s and units_sold > 0
        union all
        select sale_date, store_id, product_id, quantity, paid_amount
        from ({_EDGE_LINES}) as edge_lines
    )
"""


def data_days() -> pd.DataFrame:
    """First and last sale date (null when no sale has landed yet)."""
    # The built table's bounds come from its sale_date index; the live view's provisional rows are the
    # few baskets landed since the last build (its built branch is pruned by the is_provisional filter).
    return live(
        """
        select min(first_day) as first_day, max(last_day) as last_day
        from (
            select min(sale_date) as first_day, max(sale_date) as last_day from marts.fct_sales
            union all
            select min(sale_date), max(sale_date) from marts.fct_sales_live where is_provisional
        ) as bounds
        """
    )


def kpis(scope: Scope) -> dict[str, float]:
    """Revenue (paid), refunds, net revenue, refund rate, transactions, average basket, active customers."""
    frame = live(
        f"""
        with full_days as (
            select coalesce(sum(revenue), 0) as revenue, coalesce(sum(transactions), 0) as transactions
            from marts.agg_kpis_daily_live
            where activity_date >= %(day_from)s and activity_date < %(day_to)s
        ),
        edge_lines as ({_EDGE_LINES}),
        edges as (
            select coalesce(sum(paid_amount), 0) as revenue, count(distinct transaction_id) as transactions
            from edge_lines
        ),
        refunds as (
            select coalesce(sum(refund_amount), 0) as refunds
            from marts.fct_refunds_live
            where has_basket and refunded_at >= %(start)s and refunded_at < %(end)s
        ),
        customers as (
            select count(*) as active_customers
            from (
                select customer_id from marts.agg_customer_daily_live
                where activity_date >= %(day_from)s and activity_date < %(day_to)s and transactions > 0
                union
                select customer_id from edge_lines where customer_id is not null
            ) as active
        )
        select full_days.revenue + edges.revenue as revenue,
               refunds.refunds,
               full_days.transactions + edges.transactions as transactions,
               customers.active_customers
        from full_days, edges, refunds, customers
        """,
        scope.params(),
    )
    row = frame.iloc[0]
    revenue, refunds, transactions = float(row.revenue), float(row.refunds), int(row.transactions)
    return {
        "revenue": revenue,
        "net_revenue": revenue - refunds,
        "refunds": refunds,
        "refund_rate": refunds / revenue if revenue else 0.0,
        "transactions": transactions,
        "average_basket_value": revenue / transactions if transactions else 0.0,
        "active_customers": int(row.active_customers),
    }


def provisional(scope: Scope) -> dict[str, Any]:
    """What of the scope's sales is provisional: landed since the marts were last built, not yet in them."""
    frame = live(
        """
        select count(distinct transaction_id) as baskets, coalesce(sum(paid_amount), 0) as revenue,
               (select min(built_at) from ops.serving_horizons) as built_at
        from marts.fct_sales_live
        where is_provisional and sold_at >= %(start)s and sold_at < %(end)s
        """,
        scope.params(),
    )
    row = frame.iloc[0]
    return {"baskets": int(row.baskets), "revenue": float(row.revenue), "built_at": row.built_at}


def sales_by_product(scope: Scope) -> pd.DataFrame:
    return live(
        f"""
        with {_SCOPED_SALES}
        select scoped_sales.product_id, products.product_name, products.category,
               sum(scoped_sales.units)::bigint as units, sum(scoped_sales.revenue) as revenue
        from scoped_sales
        left join marts.dim_products as products
            on products.product_id = scoped_sales.product_id and products.is_current
        group by 1, 2, 3
        order by revenue desc, product_id
        """,
        scope.params(),
    )


def sales_over_time(scope: Scope, bucket: str) -> pd.DataFrame:
    """Revenue and units per hour (from the lines) or per day (rollups + edges) inside the scope."""
    if bucket == "hour":
        return live(
            """
            select date_trunc('hour', sold_at, 'UTC') as period, sum(quantity)::bigint as units,
                   sum(paid_amount) as revenue, count(distinct transaction_id) as transactions
            from marts.fct_sales_live
            where sale_date between %(first_day)s and %(last_day)s
              and sold_at >= %(start)s and sold_at < %(end)s
            group by 1 order by 1
            """,
            scope.params(),
        )
    return live(
        f"""
        with {_SCOPED_SALES}
        select sale_day as period, sum(units)::bigint as units, sum(revenue) as revenue
        from scoped_sales group by 1 order by 1
        """,
        scope.params(),
    )


def minute_series(start: datetime, end: datetime) -> pd.DataFrame:
    """Revenue per minute window in [start, end), with is_final (batch) or not (stream)."""
    return live(
        """
        select window_start, is_final, sum(gross_revenue - discount) as revenue, sum(units)::bigint as units
        from marts.fct_product_metrics_minute
        where window_start >= %(start)s and window_start < %(end)s
        group by 1, 2 order by 1
        """,
        {"start": start, "end": end},
    )


def refunds_detail(scope: Scope) -> pd.DataFrame:
    """Refunds in the scope per reason, category, product and store (basket known)."""
    return live(
        """
        select refunds.reason, coalesce(products.category, '(unknown)') as category, refunds.product_id,
               coalesce(products.product_name, refunds.product_id) as product_name, refunds.store_id,
               coalesce(stores.store_name, refunds.store_id) as store_name,
               count(*) as refunds, sum(refunds.refund_amount) as amount
        from marts.fct_refunds_live as refunds
        left join marts.dim_products as products
            on products.product_id = refunds.product_id and products.is_current
        left join marts.dim_stores as stores on stores.store_id = refunds.store_id
        where refunds.has_basket and refunds.refunded_at >= %(start)s and refunds.refunded_at < %(end)s
        group by 1, 2, 3, 4, 5, 6
        """,
        scope.params(),
    )


def refunds_over_time(scope: Scope, bucket: str) -> pd.DataFrame:
    return live(
        """
        select date_trunc(%(bucket)s, refunded_at, 'UTC') as period, sum(refund_amount) as refunds
        from marts.fct_refunds_live
        where has_basket and refunded_at >= %(start)s and refunded_at < %(end)s
        group by 1 order by 1
        """,
        {**scope.params(), "bucket": bucket},
    )


def store_performance(scope: Scope) -> pd.DataFrame:
    return live(
        f"""
        with {_SCOPED_SALES},
        store_sales as (
            select store_id, sum(units)::bigint as units, sum(revenue) as revenue
            from scoped_sales group by 1
        ),
        store_refunds as (
            select store_id, sum(refund_amount) as refunds
            from marts.fct_refunds_live
            where has_basket and refunded_at >= %(start)s and refunded_at < %(end)s
            group by 1
        )
        select stores.store_id, stores.store_name, stores.city, stores.region, stores.store_format,
               stores.latitude, stores.longitude,
               coalesce(store_sales.units, 0) as units, coalesce(store_sales.revenue, 0) as revenue,
               coalesce(store_refunds.refunds, 0) as refunds
        from marts.dim_stores as stores
        left join store_sales on store_sales.store_id = stores.store_id
        left join store_refunds on store_refunds.store_id = stores.store_id
        order by revenue desc, stores.store_id
        """,
        scope.params(),
    )


# --- ML ------------------------------------------------------------------------------------------------


def latest_model_runs() -> pd.DataFrame:
    return slow(
        """
        select run_number, kind, status, reason, chosen_k, rule_count, data_to, finished_at, duration_s
        from ml.model_runs order by run_number desc limit 10
        """
    )


def segment_summary() -> pd.DataFrame:
    return slow(
        """
        select rfm_segment, count(*) as customers, sum(monetary) as monetary,
               avg(monetary) as average_monetary, avg(frequency) as average_frequency,
               avg(recency_hours) as average_recency_hours
        from ml.customer_segments_latest group by 1 order by monetary desc
        """
    )


def score_distribution() -> pd.DataFrame:
    return slow(
        """
        select 'Recency' as measure, r_score as score, count(*) as customers
        from ml.customer_segments_latest group by 1, 2
        union all
        select 'Frequency', f_score, count(*) from ml.customer_segments_latest group by 1, 2
        union all
        select 'Monetary', m_score, count(*) from ml.customer_segments_latest group by 1, 2
        order by 1, 2
        """
    )


def cluster_summary() -> pd.DataFrame:
    return slow(
        """
        select cluster, cluster_label, count(*) as customers, avg(recency_hours) as average_recency_hours,
               avg(frequency) as average_frequency, avg(monetary) as average_monetary
        from ml.customer_segments_latest group by 1, 2 order by 1
        """
    )


def cluster_sample(size: int = 2000) -> pd.DataFrame:
    """A stable sample of customers (by hash of id) for the cluster scatter plot."""
    return slow(
        """
        select customer_id, recency_hours, frequency, monetary, cluster_label
        from ml.customer_segments_latest order by md5(customer_id) limit %(size)s
        """,
        {"size": size},
    )


def segment_transitions() -> pd.DataFrame:
    return slow(
        "select from_segment, to_segment, customers from ml.segment_transitions order by customers desc"
    )


def top_rules(limit: int = 20) -> pd.DataFrame:
    return slow(
        """
        select rule_rank, array_to_string(antecedent_names, ', ') as bought,
               array_to_string(consequent_names, ', ') as also_buy, baskets, support, confidence, lift
        from ml.product_associations_latest order by rule_rank limit %(limit)s
        """,
        {"limit": limit},
    )


def current_products() -> pd.DataFrame:
    return slow(
        """
        select product_id, product_name, category
        from marts.dim_products where is_current order by product_name
        """
    )


def also_bought(basket: tuple[str, ...], limit: int = 10) -> pd.DataFrame:
    return slow(
        """
        select product_id, product_name, score, lift, confidence, support,
               array_to_string(because_of, ', ') as because_of
        from ml.also_bought(%(basket)s::text[], %(limit)s)
        """,
        {"basket": list(basket), "limit": limit},
    )


# --- Pipeline health -----------------------------------------------------------------------------------


def stream_latest() -> pd.DataFrame:
    """Each streaming query's latest micro-batch report."""
    # A loose index scan over the query names, then each one's newest row: the table holds a row per
    # query and micro-batch (millions after a few weeks), which `distinct on` would read entirely.
    return live(
        """
        with recursive names as (
            (select query_name from ops.stream_progress order by query_name limit 1)
            union all
            select (
                select progress.query_name from ops.stream_progress as progress
                where progress.query_name > names.query_name order by progress.query_name limit 1
            )
            from names where names.query_name is not null
        )
        select latest.*
        from names
        cross join lateral (
            select query_name, reported_at, batch_id, input_rows, input_rows_per_s, processed_rows_per_s,
                   batch_duration_ms, watermark, rows_written, dead_letters
            from ops.stream_progress as progress
            where progress.query_name = names.query_name
            order by progress.reported_at desc limit 1
        ) as latest
        order by latest.query_name
        """
    )


def stream_throughput(minutes: int = 60, bucket_s: int = 30) -> pd.DataFrame:
    """Rows/s per query, averaged over `bucket_s`-second buckets: a report every 2 s is 1,800 points a
    line for an hour, more than a chart is wide, and converting them was most of the page's render
    time with 20 viewers (profiled)."""
    return live(
        """
        select query_name,
               date_bin(make_interval(secs => %(b)s), reported_at, timestamptz '2000-01-01') as reported_at,
               avg(processed_rows_per_s) as processed_rows_per_s
        from ops.stream_progress
        where reported_at >= (select max(reported_at) from ops.stream_progress) - make_interval(mins => %(m)s)
        group by 1, 2
        order by 2, 1
        """,
        {"m": minutes, "b": bucket_s},
    )


def landed_offsets() -> pd.DataFrame:
    return live("select landed_in, topic, kafka_partition, last_offset from ops.landed_offsets")


def kafka_log_ends(topics: tuple[str, ...]) -> pd.DataFrame:
    """The highest real end offset the speed layer saw per log (topic id) and partition; never lower."""
    return live(
        """
        select topic, topic_id, kafka_partition, end_offset from ops.kafka_log_ends
        where topic = any(%(topics)s)
        """,
        {"topics": list(topics)},
    )


def table_freshness() -> pd.DataFrame:
    """Newest landing (raw, speed, batch) or newest data held (marts) per table."""
    return live(
        """
        select table_name, latest_at from ops.table_freshness
        union all select 'marts.fct_sales', max(last_ingested_at) from marts.fct_sales
        union all select 'marts.fct_refunds', max(last_ingested_at) from marts.fct_refunds
        union all select 'marts.agg_sales_daily', max(last_ingested_at) from marts.agg_sales_daily
        union all select 'marts.agg_kpis_daily', max(last_ingested_at) from marts.agg_kpis_daily
        union all select 'marts.agg_customer_daily', max(last_ingested_at) from marts.agg_customer_daily
        union all select 'marts.rpt_reconciliation', max(last_changed_at) from marts.rpt_reconciliation
        """
    )


def dead_letters() -> pd.DataFrame:
    return live(
        """
        select reason, topic, count(*) as messages, max(received_at) as latest_at
        from ops.dead_letter_redacted where replayed_at is null group by 1, 2 order by messages desc
        """
    )


def late_events(hours: int = 24) -> pd.DataFrame:
    return live(
        """
        select event_minute, topic, late_events, extract(epoch from max_lateness) as max_lateness_s
        from ops.late_events
        where event_minute >= (select max(event_minute) from ops.late_events) - make_interval(hours => %(h)s)
        order by event_minute
        """,
        {"h": hours},
    )


def dag_runs(per_dag: int = 5) -> pd.DataFrame:
    return live(
        """
        select dag_id, run_id, state, logical_date, started_at, finished_at, tasks_succeeded, tasks_failed
        from (
            select runs.*, row_number() over (partition by dag_id order by recorded_at desc) as position
            from ops.dag_runs as runs
        ) as ranked
        where position <= %(n)s order by dag_id, recorded_at desc
        """,
        {"n": per_dag},
    )


def recent_alerts(limit: int = 20) -> pd.DataFrame:
    return live(
        "select raised_at, severity, source, message from ops.alerts order by alert_id desc limit %(n)s",
        {"n": limit},
    )


def reconciliation(hours: int = 24) -> pd.DataFrame:
    """Stream vs batch per hour over the last `hours` of windows: mismatching windows and deltas."""
    return live(
        """
        select hour_start, bool_or(is_hour_closed) as is_hour_closed, count(*) as window_products,
               count(*) filter (where not is_matching) as mismatching,
               sum(units_delta)::bigint as units_delta,
               sum(gross_revenue_delta) as gross_revenue_delta,
               sum(refund_amount_delta) as refund_amount_delta
        from marts.rpt_reconciliation
        where window_start >= (select max(window_start) from marts.rpt_reconciliation)
              - make_interval(hours => %(h)s)
        group by 1 order by 1 desc
        """,
        {"h": hours},
    )


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _stream_health(
    dsn: str,
    window_s: float,
    stall_s: float,
    topics: tuple[str, ...],
    _ends: Callable[[], pd.DataFrame | None] | None = None,  # underscore: not part of the cache key
    _arrivals: Any = None,
) -> tuple[str, str]:
    import psycopg

    from dashboard.db import DashboardError, unavailable
    from retail.stream_health import stream_health

    # Asked only when the cached health expired: the broker's ends are themselves cached
    # (`consumer_lag.broker_ends`, shared with the lag panel), so a render costs one cache lookup.
    ends = _ends() if _ends is not None else None
    broker_ends = None if ends is None else {(t, i, p): e for t, i, p, e in ends.itertuples(index=False)}
    try:
        health = stream_health(dsn, window_s, stall_s, broker_ends, topics, _arrivals)
    except psycopg.OperationalError as error:
        raise unavailable(error) from None
    except psycopg.Error as error:
        raise DashboardError(f"could not read the speed layer's health from ops: {error}") from None
    return health.state, health.reason


def stream_health_state(
    ends: Callable[[], pd.DataFrame | None] | None = None, arrivals: Any = None
) -> tuple[str, str]:
    """(ok | degraded | failed, reason): the speed layer's health as `retail status` shows it (one
    definition, `retail.stream_health.stream_health`); `ends()`: the broker's (`consumer_lag.
    current_broker_ends`, None when it does not answer); `arrivals`: `consumer_lag.broker_arrivals`."""
    current = settings()
    topics = (current.transactions_topic, current.refunds_topic)
    return _stream_health(
        current.analyst_dsn, current.stream_failure_window_s, current.stream_stall_s, topics, ends, arrivals
    )
