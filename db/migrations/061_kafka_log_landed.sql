-- What the speed layer has landed of each Kafka log (topic + broker topic id, '' without ids), written by
-- the sink in the same transaction as the batch's rows. Spark writes its own commit log only after that
-- transaction, so a stop in between (`retail down`, kill -9) leaves the checkpoint one batch behind what
-- really landed, and a loss count taken from the checkpoint alone would call that batch lost when the log
-- is replaced.
create table if not exists ops.kafka_log_landed (
    topic           text not null,
    topic_id        text not null,
    kafka_partition integer not null,
    next_offset     bigint not null check (next_offset >= 0),
    landed_at       timestamptz not null default now(),
    primary key (topic, topic_id, kafka_partition)
);
