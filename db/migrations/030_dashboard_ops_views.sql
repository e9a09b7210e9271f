-- What the dashboard's pipeline-health page needs to read as the analyst role, which cannot read raw,
-- speed or batch, nor Airflow's metadata database. The views below belong to the migration role and
-- expose only aggregates (a view runs with its owner's privileges), so no row of a raw table leaks.

-- Outcome of every task try of the platform's DAGs, written by the task callbacks of
-- retail.alerts.DEFAULT_TASK_ARGS (success, and failure after the last retry). Airflow's own metadata
-- lives in another database owned by another role; this table keeps what the dashboard shows next to
-- the data it concerns, like ops.alerts.
create table if not exists ops.task_runs (
    dag_id        text not null,
    run_id        text not null,
    task_id       text not null,
    map_index     integer not null default -1,
    try_number    integer,
    state         text not null check (state in ('success', 'failed')),
    logical_date  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    recorded_at   timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, map_index)
);
create index if not exists task_runs_recorded_idx on ops.task_runs (dag_id, recorded_at desc);

-- One row per DAG run seen in ops.task_runs: failed as soon as one task failed; "success" means every
-- task that reported so far succeeded (tasks still running have not reported).
create or replace view ops.dag_runs as
select
    dag_id,
    run_id,
    min(logical_date) as logical_date,
    min(started_at) as started_at,
    max(finished_at) as finished_at,
    case when bool_or(state = 'failed') then 'failed' else 'success' end as state,
    count(*) filter (where state = 'success') as tasks_succeeded,
    count(*) filter (where state = 'failed') as tasks_failed,
    max(recorded_at) as recorded_at
from ops.task_runs
group by dag_id, run_id;

-- The Kafka position the speed layer has landed per topic partition: the highest offset committed to a
-- raw table or the dead letter (exactly-once sinks commit them with their batch). Kafka's end offset
-- minus this is the consumer lag. Loose index scans keep it cheap on millions of rows.
create index if not exists transactions_kafka_position_idx on raw.transactions (kafka_partition, kafka_offset);
create index if not exists refunds_kafka_position_idx on raw.refunds (kafka_partition, kafka_offset);

create or replace view ops.landed_offsets as
with recursive transaction_partitions as (
    select min(kafka_partition) as kafka_partition from raw.transactions
    union all
    select (select min(t.kafka_partition) from raw.transactions as t where t.kafka_partition > p.kafka_partition)
    from transaction_partitions as p
    where p.kafka_partition is not null
),
refund_partitions as (
    select min(kafka_partition) as kafka_partition from raw.refunds
    union all
    select (select min(r.kafka_partition) from raw.refunds as r where r.kafka_partition > p.kafka_partition)
    from refund_partitions as p
    where p.kafka_partition is not null
)
select
    'raw.transactions'::text as landed_in,
    null::text as topic,
    p.kafka_partition,
    (select max(t.kafka_offset) from raw.transactions as t where t.kafka_partition = p.kafka_partition)
        as last_offset
from transaction_partitions as p
where p.kafka_partition is not null
union all
select
    'raw.refunds',
    null,
    p.kafka_partition,
    (select max(r.kafka_offset) from raw.refunds as r where r.kafka_partition = p.kafka_partition)
from refund_partitions as p
where p.kafka_partition is not null
union all
select 'ops.dead_letter', topic, kafka_partition, max(kafka_offset)
from ops.dead_letter
where kafka_partition is not null
group by topic, kafka_partition;

-- Newest row of each raw, speed and batch table (by landing time, indexed where the tables are large).
create or replace view ops.table_freshness as
select 'raw.transactions'::text as table_name, max(ingested_at) as latest_at from raw.transactions
union all
select 'raw.transaction_items', max(ingested_at) from raw.transaction_items
union all
select 'raw.refunds', max(ingested_at) from raw.refunds
union all
select 'raw.products', max(loaded_at) from raw.products
union all
select 'raw.stores', max(loaded_at) from raw.stores
union all
select 'speed.product_metrics_minute', max(updated_at) from speed.product_metrics_minute
union all
select 'batch.product_metrics_minute', max(computed_at) from batch.product_metrics_minute
union all
select 'batch.closed_hours', max(closed_at) from batch.closed_hours;

comment on table ops.task_runs is 'Outcome of each task of the platform DAGs (from the task callbacks), for the dashboard.';
comment on view ops.dag_runs is 'One row per DAG run from ops.task_runs: failed if any task failed.';
comment on view ops.landed_offsets is 'Highest Kafka offset landed per partition (raw tables, dead letter): consumer lag = end offset - last_offset - 1.';
comment on view ops.table_freshness is 'Newest landing time of each raw, speed and batch table.';

grant select on ops.task_runs, ops.dag_runs, ops.landed_offsets, ops.table_freshness to :analyst;
grant select, insert, update on ops.task_runs to :writer;

-- The health page reads each query's latest progress and the last hour of it: without these indexes
-- both scan a table that grows by several rows per second.
create index if not exists stream_progress_latest_idx on ops.stream_progress (query_name, reported_at desc);
create index if not exists stream_progress_reported_idx on ops.stream_progress (reported_at);
