"""The dashboard tests' data: a week of simulated sales ending now, marts, ML runs and ops rows.

`build(settings)` creates and migrates the settings' database, COPYs a week of the producer's simulator
(2,000 customers, fixed seed; the window ends at the current minute so relative scopes such as "Last
hour" hold sales) into the raw tables with Kafka coordinates, derives the speed and batch minute metrics
from them (the stream missed one basket; every hour but the last two with sales is closed by the batch
layer), writes ops rows (stream progress, dead letters, late events, DAG task outcomes, an alert), runs
`dbt build` and both ML jobs twice (so segment transitions exist).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import psycopg

from dimensions import load as dimensions
from ml.jobs import run_all
from producer.backfill import window
from retail.dbt import run_dbt
from retail.settings import Settings
from stack import postgres
from tests.ml.producer_data import load_raw, simulation_plan

CUSTOMERS = 2000
DAYS = 7

# Kafka coordinates as the speed layer would have landed them: partition by id hash, offsets in order.
KAFKA_COORDINATES = """
update {table} as facts set kafka_partition = numbered.partition, kafka_offset = numbered.offset
from (
    select {key}, abs(hashtext({key})) % {partitions} as partition,
           row_number() over (partition by abs(hashtext({key})) % {partitions} order by event_ts, {key}) - 1
               as offset
    from {table}
) as numbered
where numbered.{key} = facts.{key}
"""

METRICS = """
insert into {table} (window_start, product_id, units, gross_revenue, discount, transactions, refunds,
                     refund_amount{extra_columns})
select window_start, product_id, sum(units), sum(gross), sum(discount), sum(transactions), sum(refunds),
       sum(refund_amount){extra_values}
from (
    select date_trunc('minute', i.event_ts) as window_start, i.product_id, i.quantity as units,
           i.quantity * i.unit_price as gross, i.discount, 1 as transactions, 0 as refunds,
           0::numeric as refund_amount
    from raw.transaction_items as i
    where {line_filter}
    union all
    select date_trunc('minute', r.event_ts), r.product_id, 0, 0, 0, 0, 1, r.amount
    from raw.refunds as r
    where {refund_filter}
) as contributions
group by window_start, product_id
"""

# Anchored at the last sale, not the clock: the simulator's store hours can leave the last two hours
# of the clock without sales, and then no window would be provisional.
CLOSED_BEFORE = "(date_trunc('hour', (select max(event_ts) from raw.transaction_items)) - interval '1 hour')"
# The basket the stream dropped as late (the batch layer has it): the latest one of the closed hours.
MISSED_BASKET = f"(select max(transaction_id) from raw.transactions where event_ts < {CLOSED_BEFORE})"

OPS_ROWS = """
insert into ops.stream_progress (query_name, run_id, batch_id, reported_at, input_rows,
                                 input_rows_per_s, processed_rows_per_s, batch_duration_ms, watermark,
                                 rows_written, dead_letters)
select query_name, 'run-1', batch_id, now() - (20 - batch_id) * interval '30 seconds', 100 + batch_id,
       200.0, 250.0 + batch_id, 400 + batch_id, now() - interval '5 minutes', 100 + batch_id, 0
from unnest(array['raw_transactions', 'raw_refunds']) as query_name, generate_series(1, 20) as batch_id;

insert into ops.dead_letter (topic, kafka_partition, kafka_offset, reason, error, payload)
values ('transactions', 0, 100000, 'invalid_json', 'Expecting value', 'x'),
       ('transactions', 1, 100001, 'invalid_json', 'Expecting value', 'y'),
       ('refunds', 0, 100002, 'unknown_transaction_refund', 'no sale T0', 'z');

insert into ops.late_events (event_minute, topic, late_events, max_lateness)
values (date_trunc('minute', now()) - interval '2 hours', 'transactions', 3, interval '9 minutes'),
       (date_trunc('minute', now()) - interval '90 minutes', 'refunds', 1, interval '6 minutes');

insert into ops.task_runs (dag_id, run_id, task_id, state, logical_date, started_at, finished_at)
values ('retail_dimensions', 'scheduled__1', 'load_products', 'success', now() - interval '1 day',
        now() - interval '1 day', now() - interval '1 day' + interval '20 seconds'),
       ('retail_ml', 'asset_triggered__1', 'segment_customers', 'success', now() - interval '2 hours',
        now() - interval '2 hours', now() - interval '2 hours' + interval '30 seconds'),
       ('retail_ml', 'asset_triggered__1', 'mine_rules', 'failed', now() - interval '2 hours',
        now() - interval '2 hours', now() - interval '2 hours' + interval '40 seconds');

insert into ops.alerts (source, severity, message)
values ('airflow:retail_ml.mine_rules', 'error', 'task retail_ml.mine_rules failed: MemoryError');
"""


@dataclasses.dataclass(frozen=True)
class Dataset:
    settings: Settings
    end: datetime
    lines: int


def load_metrics_and_ops(conn: psycopg.Connection, settings: Settings) -> None:
    for table, key, partitions in (
        ("raw.transactions", "transaction_id", settings.transactions_partitions),
        ("raw.refunds", "refund_id", settings.refunds_partitions),
    ):
        conn.execute(KAFKA_COORDINATES.format(table=table, key=key, partitions=partitions))
    conn.execute(
        METRICS.format(
            table="speed.product_metrics_minute",
            extra_columns="",
            extra_values="",
            line_filter=f"i.transaction_id <> {MISSED_BASKET}",
            refund_filter="true",
        )
    )
    conn.execute(
        METRICS.format(
            table="batch.product_metrics_minute",
            extra_columns=", batch_run_id",
            extra_values=", 'b1'",
            line_filter=f"i.event_ts < {CLOSED_BEFORE}",
            refund_filter=f"r.event_ts < {CLOSED_BEFORE}",
        )
    )
    conn.execute(
        f"""insert into batch.closed_hours (hour_start, batch_run_id)
            select generate_series(date_trunc('hour', min(event_ts)), {CLOSED_BEFORE} - interval '1 hour',
                                   interval '1 hour'), 'b1'
            from raw.transaction_items"""
    )
    conn.execute(OPS_ROWS)


def build(settings: Settings) -> Dataset:
    postgres.prepare(settings)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start_ms, end_ms = window(DAYS, end)
    plan = dataclasses.replace(simulation_plan(settings, CUSTOMERS, DAYS), start_ms=start_ms, end_ms=end_ms)
    data = load_raw(settings, plan)
    dimensions.load_products(settings)
    dimensions.load_stores(settings)
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        load_metrics_and_ops(conn, settings)
    result = run_dbt(settings, ["build"])
    if not result.success:
        raise RuntimeError(f"dbt build failed: {result.exception or 'see the dbt log'}")
    run_all(settings)
    run_all(settings)
    return Dataset(settings, end, data.lines)
