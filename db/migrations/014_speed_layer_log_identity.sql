-- The speed layer tells a new Kafka log from an old one by identity (issue 12). For each topic log
-- (name + broker topic id, or '' for brokers without ids) and partition, the highest end offset anyone
-- saw the broker hold: the stream's planner and `retail down`'s drain raise it, it never decreases. When
-- the log is replaced (broker restart, recreated topic), its end minus the stream's checkpointed offset
-- is the exact number of messages that were never landed.
create table if not exists ops.kafka_log_ends (
    topic           text not null,
    topic_id        text not null,
    kafka_partition integer not null,
    end_offset      bigint not null check (end_offset >= 0),
    seen_at         timestamptz not null default now(),
    primary key (topic, topic_id, kafka_partition)
);

-- One row per detected log replacement, so the loss alert is written once even when Spark plans the
-- same batch again after a crash.
create table if not exists ops.kafka_log_changes (
    topic        text not null,
    old_topic_id text not null,
    new_topic_id text not null,
    lost         bigint not null,
    detected_at  timestamptz not null default now(),
    primary key (topic, old_topic_id, new_topic_id)
);

grant select on ops.kafka_log_ends, ops.kafka_log_changes to :analyst;
