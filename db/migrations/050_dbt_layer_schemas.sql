-- One schema per dbt layer (README "Serving layer: dbt"): staging views, intermediate models and the
-- snapshot used to share `marts` with the marts, where analysts saw `stg_*` views they may not read
-- and the snapshot. dbt builds each layer into the schema named after it
-- (dbt_project/macros/generate_schema_name.sql); only `marts` is granted to the analyst role.

create schema if not exists staging;       -- dbt staging views over raw, speed and batch
create schema if not exists intermediate;  -- dbt intermediate models
create schema if not exists snapshots;     -- dbt snapshots (history: never rebuilt)

comment on schema staging is 'dbt staging views: raw, speed and batch renamed and typed. Not for analysts (read marts).';
comment on schema intermediate is 'dbt intermediate models between staging and marts. Not for analysts (read marts).';
comment on schema snapshots is 'dbt snapshots: the product catalog history behind marts.dim_products. Not for analysts.';

grant usage, create on schema staging, intermediate, snapshots to :writer;

-- A stack built before this migration holds these layers in marts. Move each relation to its layer's
-- schema rather than dropping it: the snapshot holds history no rebuild can restore, and the marts
-- views built on a staging view follow it (Postgres binds views by object id), so nothing a reader
-- queries disappears; the next dbt build then finds every relation where it expects it. A relation
-- already present in the layer's schema (dbt ran before this migration) is kept, and the old one is
-- moved next to it as `<name>__before_050`, so nothing is lost.
do $$
declare
    relation record;
    moved_name text;
begin
    for relation in
        select
            c.relname,
            case c.relkind when 'v' then 'view' when 'm' then 'materialized view' else 'table' end as kind,
            case
                when c.relname like 'stg\_%' then 'staging'
                when c.relname like 'int\_%' then 'intermediate'
                else 'snapshots'
            end as layer
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = 'marts'
          and c.relkind in ('r', 'p', 'v', 'm')
          and (c.relname like 'stg\_%' or c.relname like 'int\_%' or c.relname like 'snap\_%')
        order by c.relname
    loop
        moved_name := relation.relname;
        if to_regclass(format('%I.%I', relation.layer, relation.relname)) is not null then
            moved_name := relation.relname || '__before_050';
            execute format('alter %s marts.%I rename to %I', relation.kind, relation.relname, moved_name);
        end if;
        execute format('alter %s marts.%I set schema %I', relation.kind, moved_name, relation.layer);
        -- Granted by marts' default privileges; the analyst reads marts only.
        execute format('revoke all on %I.%I from :analyst', relation.layer, moved_name);
    end loop;
end
$$;
