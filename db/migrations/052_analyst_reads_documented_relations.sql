-- The analyst role reads `marts` and the documented `ml`/`ops` relations (README "For analysts"),
-- nothing else. Until now every table created in ml and ops was readable by default, including the
-- stream's internal bookkeeping; from here on an ml/ops relation is readable only when a migration
-- grants it (as 014, 015, 020, 030 and 040 do), while relations dbt adds to marts stay readable by
-- default (001). tests/dbt/test_schemas.py asserts the exact set.

revoke select on ops.sink_commits, ops.stream_watermarks from :analyst;

alter default privileges in schema ml, ops revoke select on tables from :analyst;
alter default privileges for role :writer in schema ml, ops revoke select on tables from :analyst;
