-- Facts and dimensions as landed. Kafka coordinates are kept on every fact so any row can be traced
-- back to (and replayed from) its message.

create table if not exists raw.products (
    product_id  text primary key,
    sku         text not null unique,
    name        text not null,
    category    text not null,
    brand       text not null,
    unit_cost   numeric(12, 2) not null check (unit_cost >= 0),
    base_price  numeric(12, 2) not null check (base_price >= 0),
    source_file text,
    loaded_at   timestamptz not null default now()
);

create table if not exists raw.stores (
    store_id      text primary key,
    name          text not null,
    city          text not null,
    region        text not null,
    latitude      double precision not null check (latitude between -90 and 90),
    longitude     double precision not null check (longitude between -180 and 180),
    opened_on     date not null,
    square_meters integer not null check (square_meters > 0),
    format        text,
    source_file   text,
    loaded_at     timestamptz not null default now()
);

create table if not exists raw.transactions (
    transaction_id  text primary key,
    event_id        uuid not null unique,
    event_ts        timestamptz not null,
    store_id        text not null,
    customer_id     text,
    channel         text not null,
    payment_method  text not null,
    line_count      integer not null check (line_count > 0),
    schema_version  integer not null,
    kafka_partition integer,
    kafka_offset    bigint,
    ingested_at     timestamptz not null default now()
);
create index if not exists transactions_event_ts_idx on raw.transactions (event_ts);
create index if not exists transactions_customer_idx on raw.transactions (customer_id);

create table if not exists raw.transaction_items (
    transaction_id text not null,
    line_number    integer not null check (line_number > 0),
    product_id     text not null,
    quantity       integer not null check (quantity > 0),
    unit_price     numeric(12, 2) not null check (unit_price >= 0),
    discount       numeric(12, 2) not null check (discount >= 0),
    event_ts       timestamptz not null,
    store_id       text not null,
    ingested_at    timestamptz not null default now(),
    primary key (transaction_id, line_number)
);
create index if not exists transaction_items_event_ts_idx on raw.transaction_items (event_ts);
create index if not exists transaction_items_product_idx on raw.transaction_items (product_id);

create table if not exists raw.refunds (
    refund_id       text primary key,
    event_id        uuid not null unique,
    transaction_id  text not null,
    product_id      text not null,
    quantity        integer not null check (quantity > 0),
    amount          numeric(12, 2) not null check (amount >= 0),
    reason          text not null,
    event_ts        timestamptz not null,
    schema_version  integer not null,
    kafka_partition integer,
    kafka_offset    bigint,
    ingested_at     timestamptz not null default now()
);
create index if not exists refunds_event_ts_idx on raw.refunds (event_ts);
create index if not exists refunds_transaction_idx on raw.refunds (transaction_id);
