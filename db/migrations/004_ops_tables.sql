-- Operational tables: nothing is dropped silently, everything the pipeline refuses or does is recorded.

create table if not exists ops.dead_letter (
    dead_letter_id  bigserial primary key,
    topic           text not null,
    kafka_partition integer,
    kafka_offset    bigint,
    reason          text not null,
    error           text not null,
    payload         bytea,
    received_at     timestamptz not null default now(),
    replayed_at     timestamptz,
    unique (topic, kafka_partition, kafka_offset)
);
create index if not exists dead_letter_reason_idx on ops.dead_letter (reason) where replayed_at is null;

create table if not exists ops.sink_commits (
    query_name   text not null,
    batch_id     bigint not null,
    rows_written bigint not null,
    committed_at timestamptz not null default now(),
    primary key (query_name, batch_id)
);

create table if not exists ops.stream_progress (
    query_name           text not null,
    run_id               text not null,
    batch_id             bigint not null,
    reported_at          timestamptz not null,
    input_rows           bigint not null,
    input_rows_per_s     double precision,
    processed_rows_per_s double precision,
    batch_duration_ms    bigint,
    watermark            timestamptz,
    rows_written         bigint,
    dead_letters         bigint,
    primary key (query_name, run_id, batch_id)
);

create table if not exists ops.late_events (
    event_minute timestamptz not null,
    topic        text not null,
    late_events  bigint not null,
    max_lateness interval,
    updated_at   timestamptz not null default now(),
    primary key (event_minute, topic)
);

create table if not exists ops.rejected_rows (
    rejected_row_id bigserial primary key,
    load_id         text not null,
    source_file     text not null,
    line_number     integer not null,
    reason          text not null,
    row_text        text,
    rejected_at     timestamptz not null default now()
);
create index if not exists rejected_rows_load_idx on ops.rejected_rows (load_id);

create table if not exists ops.alerts (
    alert_id  bigserial primary key,
    raised_at timestamptz not null default now(),
    source    text not null,
    severity  text not null check (severity in ('info', 'warning', 'error', 'critical')),
    message   text not null,
    context   jsonb not null default '{}'::jsonb
);
