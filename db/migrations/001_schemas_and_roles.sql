-- Schemas of the lambda architecture and the privileges of the two login roles.
-- :writer and :analyst are replaced by the quoted role names from settings; both roles exist already
-- (the runner creates them with their generated passwords before any migration).

create schema if not exists raw;    -- facts and dimensions as landed
create schema if not exists speed;  -- streaming aggregates (speed layer)
create schema if not exists batch;  -- batch-layer recomputations
create schema if not exists ml;     -- model outputs
create schema if not exists ops;    -- dead letter, progress, commits, rejects, alerts
create schema if not exists marts;  -- owned by dbt (built as the writer role)

comment on schema raw is 'Facts and dimensions as landed by the speed layer and the dimension loads.';
comment on schema speed is 'Speed-layer aggregates: provisional until the batch layer closes their window.';
comment on schema batch is 'Batch-layer recomputations from the lake (the master dataset).';
comment on schema ml is 'Customer segments, association rules and model runs.';
comment on schema ops is 'Operational tables: dead letter, stream progress, sink commits, rejected rows, alerts.';
comment on schema marts is 'Star-schema marts built by dbt: what analysts, ML and the dashboard read.';

grant usage, create on schema raw, speed, batch, ml, ops, marts to :writer;
grant usage on schema marts, ml, ops to :analyst;

-- Tables made by migrations (this role) and by the pipeline (dbt, ML: the writer role).
alter default privileges in schema raw, speed, batch, ml, ops, marts
    grant select, insert, update, delete, truncate on tables to :writer;
alter default privileges in schema raw, speed, batch, ml, ops, marts
    grant usage, select, update on sequences to :writer;
alter default privileges in schema marts, ml, ops grant select on tables to :analyst;
alter default privileges for role :writer in schema marts, ml, ops grant select on tables to :analyst;

-- The analyst role reads; even a mistaken grant elsewhere cannot make its sessions write.
alter role :analyst set default_transaction_read_only = on;
