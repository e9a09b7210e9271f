-- rpt_reconciliation's incremental runs find the windows either layer changed since the last build by
-- speed.updated_at and batch.computed_at: without these indexes each hourly run scanned both tables.
create index if not exists speed_product_metrics_minute_updated_at_idx
    on speed.product_metrics_minute (updated_at);
create index if not exists batch_product_metrics_minute_computed_at_idx
    on batch.product_metrics_minute (computed_at);
