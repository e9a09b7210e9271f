{% macro utc_date(column) -%}
    {#- The UTC calendar date of a timestamptz, whatever the session's TimeZone. -#}
    ({{ column }} at time zone 'UTC')::date
{%- endmacro %}
