{% macro date_list(query) %}
    {#- A parenthesized list of date literals: the dates `query` (one date column) returns, read before
        the model's query runs, so Postgres plans `<date column> in <list>` with constants and takes
        the index range of those days instead of guessing a subquery's size and scanning the whole
        table. `(null::date)`, which matches nothing, when there is none or at parse time. -#}
    {%- set dates = run_query(query).columns[0].values() if execute else [] -%}
    {%- if dates -%}
        ({% for day in dates | sort %}'{{ day }}'::date{{ ', ' if not loop.last }}{% endfor %})
    {%- else -%}
        (null::date)
    {%- endif -%}
{% endmacro %}
