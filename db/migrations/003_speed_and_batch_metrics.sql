-- Per-product 1-minute metrics from both layers, same columns so dbt can union and compare them.

create table if not exists speed.product_metrics_minute (
    window_start  timestamptz not null,
    product_id    text not null,
    units         bigint not null default 0,
    gross_revenue numeric(18, 2) not null default 0,
    discount      numeric(18, 2) not null default 0,
    transactions  bigint not null default 0,
    refunds       bigint not null default 0,
    refund_amount numeric(18, 2) not null default 0,
    updated_at    timestamptz not null default now(),
    primary key (window_start, product_id)
);

create table if not exists batch.product_metrics_minute (
    window_start  timestamptz not null,
    product_id    text not null,
    units         bigint not null default 0,
    gross_revenue numeric(18, 2) not null default 0,
    discount      numeric(18, 2) not null default 0,
    transactions  bigint not null default 0,
    refunds       bigint not null default 0,
    refund_amount numeric(18, 2) not null default 0,
    batch_run_id  text not null,
    computed_at   timestamptz not null default now(),
    primary key (window_start, product_id)
);

-- Which hours the batch layer has closed: the serving view takes batch rows up to the latest one.
create table if not exists batch.closed_hours (
    hour_start   timestamptz primary key,
    batch_run_id text not null,
    closed_at    timestamptz not null default now()
);
