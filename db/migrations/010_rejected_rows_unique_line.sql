-- A rejected line is recorded once per load: the dimension loads derive load_id from the file's content
-- hash and insert rejects with `on conflict (load_id, line_number) do nothing`, so rerunning a load of the
-- same file leaves ops.rejected_rows unchanged (Airflow tasks must be idempotent).

create unique index if not exists rejected_rows_load_line_idx on ops.rejected_rows (load_id, line_number);
