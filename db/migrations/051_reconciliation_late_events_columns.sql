-- marts.rpt_reconciliation gained `explained_by_late_events` and `late_events`. It is an incremental
-- model with a fixed column list (on_schema_change: fail) and holds nothing that cannot be recomputed
-- from speed and batch, so a table built before is dropped here and the next dbt build rebuilds it in
-- full. Nothing is built on it (a dependant would make this fail loudly rather than drop it too).
do $$
begin
    if to_regclass('marts.rpt_reconciliation') is not null and not exists (
        select 1
        from information_schema.columns
        where table_schema = 'marts'
          and table_name = 'rpt_reconciliation'
          and column_name = 'explained_by_late_events'
    ) then
        drop table marts.rpt_reconciliation;
    end if;
end
$$;
