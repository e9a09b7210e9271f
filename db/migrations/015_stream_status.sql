-- What `retail status`, the Pipeline health page and on-call read to tell a healthy stream from a
-- stopped query or a crash loop (issue 12): the state of each streaming query as the streaming job's
-- listener last saw it, and one row per failure of the streaming job (its restarts back off on them and
-- stop in a visible failed state after too many).
create table if not exists ops.stream_status (
    query_name text primary key,
    state      text not null check (state in ('running', 'stopped', 'failed')),
    reason     text,
    run_id     text,
    changed_at timestamptz not null default now()
);

create table if not exists ops.stream_failures (
    failure_id bigserial primary key,
    failed_at  timestamptz not null default now(),
    reason     text not null,
    gave_up    boolean not null default false
);
create index if not exists stream_failures_failed_at_idx on ops.stream_failures (failed_at);

grant select on ops.stream_status, ops.stream_failures to :analyst;
