{#- Views and tables replaced in place, so a rebuild never removes a relation a reader or another view
    depends on (README: "Always queryable"). dbt's own materializations build `X__dbt_tmp`, rename `X`
    away and drop it with CASCADE after the commit, which also drops every view built on `X` (the live
    views, the serving view) until the build recreates them. Here, when the new relation has the old
    one's columns, the view is replaced with `create or replace view` (dependants follow it) and the
    table's rows are replaced inside one transaction (readers see the old rows until the commit).
    Anything else (first build, a changed column list, --full-refresh of a view) takes dbt's path. -#}

{% macro relation_columns_match(existing, candidate, allow_appended) %}
    {#- True when `candidate` has `existing`'s columns, same names and types in the same order
        (with `allow_appended`, followed by new ones: what `create or replace view` accepts). -#}
    {%- set query -%}
        select relation.relname, attribute.attnum, attribute.attname,
               format_type(attribute.atttypid, attribute.atttypmod)
        from pg_attribute as attribute
        join pg_class as relation on relation.oid = attribute.attrelid
        join pg_namespace as namespace on namespace.oid = relation.relnamespace
        where namespace.nspname = '{{ existing.schema }}'
          and relation.relname in ('{{ existing.identifier }}', '{{ candidate.identifier }}')
          and attribute.attnum > 0 and not attribute.attisdropped
        order by relation.relname, attribute.attnum
    {%- endset -%}
    {%- set old, new = [], [] -%}
    {%- for row in run_query(query).rows -%}
        {%- do (old if row[0] == existing.identifier else new).append(row[2] ~ ' ' ~ row[3]) -%}
    {%- endfor -%}
    {%- if allow_appended -%}
        {{ return(old | length > 0 and new[:old | length] == old) }}
    {%- else -%}
        {{ return(old | length > 0 and new == old) }}
    {%- endif -%}
{% endmacro %}

{%- materialization view, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is none or not existing_relation.is_view -%}
        {{ return(materialization_view_default()) }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set candidate = make_intermediate_relation(target_relation) -%}
    {% set grant_config = config.get('grants') %}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ drop_relation_if_exists(load_cached_relation(candidate)) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- The new definition as a scratch view, only to compare its columns with the live one's. -#}
    {% do run_query(get_create_view_as_sql(candidate, sql)) %}
    {%- set in_place = relation_columns_match(existing_relation, candidate, allow_appended=true) -%}
    {% do run_query('drop view ' ~ candidate) %}
    {%- if not in_place -%}
        {{ return(materialization_view_default()) }}
    {%- endif -%}

    {% call statement('main') -%}
        create or replace view {{ target_relation }} as (
            {{ sql }}
        );
    {%- endcall %}

    {% do apply_grants(target_relation, grant_config, should_revoke=True) %}
    {% do persist_docs(target_relation, model) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}

{%- materialization table, adapter='postgres' -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- if existing_relation is none or not existing_relation.is_table -%}
        {{ return(materialization_table_default()) }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set candidate = make_intermediate_relation(target_relation) -%}
    {% set grant_config = config.get('grants') %}

    {{ drop_relation_if_exists(load_cached_relation(candidate)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% do run_query(get_create_table_as_sql(False, candidate, sql)) %}
    {%- if not relation_columns_match(existing_relation, candidate, allow_appended=false) -%}
        {% do run_query('drop table ' ~ candidate) %}
        {{ return(materialization_table_default()) }}
    {%- endif -%}

    {% do create_indexes(target_relation) %}
    {% call statement('main') -%}
        delete from {{ target_relation }};
        insert into {{ target_relation }} select * from {{ candidate }};
        drop table {{ candidate }};
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do apply_grants(target_relation, grant_config, should_revoke=True) %}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{%- endmaterialization -%}
