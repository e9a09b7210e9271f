-- The serving layer's high-water mark (README: "Live serving"). Each raw fact records the id of the
-- transaction that landed it; a dbt build records, for each fact table and rollup it changed, the
-- oldest transaction still running when it read raw (the xmin of its snapshot). Every raw row landed
-- by a lower id had committed by then, so it is in the build; every other row is in the live views'
-- slice. Unlike a timestamp, this mark cannot skip a row whose transaction committed late.
-- Stored as bigint (the 64-bit, epoch-extended id of pg_current_xact_id()): the planner can then
-- interpolate `landed_xid >= <horizon>` against the index's actual maximum and estimate the live slice
-- (it cannot for xid8), and plan its joins for its real size.
alter table raw.transactions add column if not exists landed_xid bigint not null default pg_current_xact_id()::text::bigint;
alter table raw.transaction_items add column if not exists landed_xid bigint not null default pg_current_xact_id()::text::bigint;
alter table raw.refunds add column if not exists landed_xid bigint not null default pg_current_xact_id()::text::bigint;
create index if not exists transactions_landed_xid_idx on raw.transactions (landed_xid);
create index if not exists transaction_items_landed_xid_idx on raw.transaction_items (landed_xid);
create index if not exists refunds_landed_xid_idx on raw.refunds (landed_xid);

create table if not exists ops.serving_horizons (
    relation_name     text primary key,
    built_through_xid bigint not null,
    built_at          timestamptz not null
);
comment on table ops.serving_horizons is
    'Per built mart (fct_sales, fct_refunds, agg_*): every raw row landed by a transaction id below '
    'built_through_xid is reflected in it; the *_live views compute the rest from raw.';

-- The live views read a horizon through this stable function rather than a subquery: the planner
-- evaluates it while planning (a subquery's value is unknown then) and estimates the slice from it.
create or replace function ops.serving_horizon(relation text) returns bigint
    language sql stable
    as $$ select coalesce(max(built_through_xid), 0) from ops.serving_horizons where relation_name = relation $$;
