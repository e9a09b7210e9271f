-- Speed-layer sink state.
-- A streaming query's batch ids restart at 0 when its checkpoint is replaced (`retail stream
-- --reset-checkpoints`), so a committed batch is identified by the checkpoint's query id as well;
-- otherwise the new checkpoint's batches would be skipped as "already committed".
alter table ops.sink_commits add column if not exists query_id text not null default '';
alter table ops.sink_commits add column if not exists dead_letters bigint not null default 0;
alter table ops.sink_commits drop constraint if exists sink_commits_pkey;
alter table ops.sink_commits add primary key (query_name, query_id, batch_id);

-- The latest event time each watermark has seen, advanced in the same transaction as the raw facts it
-- came from; events whose minute window ended 5 minutes before it are counted in ops.late_events.
create table if not exists ops.stream_watermarks (
    watermark_name text primary key,
    max_event_ts   timestamptz not null,
    updated_at     timestamptz not null default now()
);
