-- dbt's incremental marts select raw rows landed since their last run by ingested_at; without these
-- indexes every incremental build scans the whole fact tables.
create index if not exists transactions_ingested_at_idx on raw.transactions (ingested_at);
create index if not exists transaction_items_ingested_at_idx on raw.transaction_items (ingested_at);
create index if not exists refunds_ingested_at_idx on raw.refunds (ingested_at);
