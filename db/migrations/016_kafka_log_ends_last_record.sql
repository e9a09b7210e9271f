-- Brokers without topic ids (issue 12): the fingerprint (`offset:digest`, retail/record_probe.py) of the
-- last record below end_offset, so an end is raised only while the log still holds that record. A
-- recreated log's ends are then never mixed into the old log's, and the lost count stays exact.
alter table ops.kafka_log_ends add column if not exists last_record text;
