-- Analysts (and the dashboard) see dead letters without their payloads: a payload is a whole customer
-- basket as sent, which the analyst role otherwise never reads. The writer keeps the table (replay).
create or replace view ops.dead_letter_redacted as
select dead_letter_id, topic, kafka_partition, kafka_offset, reason, error, received_at, replayed_at
from ops.dead_letter;

comment on view ops.dead_letter_redacted is
    'ops.dead_letter without payload: what the analyst role may read of dead-lettered events.';

revoke all on ops.dead_letter from :analyst;
grant select on ops.dead_letter_redacted to :analyst;
