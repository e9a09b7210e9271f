{% macro get_where_subquery(relation) -%}
    {#- Overrides dbt's: a generic data test on a model whose config sets meta.recent_rows_column
        checks only the rows that column dates within var('test_lookback') of now (the rows the last
        runs wrote; older rows were checked when they were written), so hourly builds stay
        incremental. `--vars '{test_lookback: all}'` checks every row. A test's own `where` config
        still applies. -#}
    {%- set filters = [] -%}
    {%- if config.get('where') -%}
        {%- do filters.append('(' ~ config.get('where') ~ ')') -%}
    {%- endif -%}
    {%- set lookback = var('test_lookback') -%}
    {%- if execute and lookback != 'all' and model.attached_node -%}
        {%- set tested = graph.nodes.get(model.attached_node) -%}
        {%- set column = tested.config.meta.get('recent_rows_column') if tested else none -%}
        {%- if column -%}
            {%- do filters.append(column ~ " > now() - interval '" ~ lookback ~ "'") -%}
        {%- endif -%}
    {%- endif -%}
    {%- if filters -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ filters | join(' and ') ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
