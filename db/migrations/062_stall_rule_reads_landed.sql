-- The stall rule (retail/stream_health.py) compares what the broker holds with what the speed layer
-- landed, and the dashboard's Pipeline health page runs it as the analyst: offsets and times only.
grant select on ops.kafka_log_landed to :analyst;
