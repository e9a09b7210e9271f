{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Each layer in a schema of its own, named exactly as the layer: a model in the schema of its
        folder under models/ (`staging`, `intermediate`, `marts`), a snapshot in `snapshots`, anything
        else in the profile's schema (`marts`). Not dbt's `<target>_<custom>`: migration 050 creates and
        grants these schemas, and analysts are granted `marts` alone. -#}
    {%- if custom_schema_name -%}
        {{ custom_schema_name | trim }}
    {%- elif node.resource_type == 'snapshot' -%}
        snapshots
    {%- elif node.resource_type == 'model' and node.fqn | length > 2 -%}
        {{ node.fqn[1] }}
    {%- else -%}
        {{ target.schema }}
    {%- endif -%}
{%- endmacro %}
