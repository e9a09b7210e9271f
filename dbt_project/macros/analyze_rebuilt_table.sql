{% macro analyze_rebuilt_table() %}
    {#- Planner statistics for a mart table built from scratch (a table model, or an incremental model's
        first or full-refresh build), before the models and tests downstream in the same build read
        it: autovacuum analyzes a new table only up to a minute later, and until then Postgres plans
        joins on it blind. Incremental runs change a small share of the rows and leave it to autovacuum
        (an empty hook runs nothing). -#}
    {%- if model.config.materialized in ('table', 'incremental') and not is_incremental() -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
