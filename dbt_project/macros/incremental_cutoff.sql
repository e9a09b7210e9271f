{% macro incremental_cutoff(column='last_ingested_at') %}
    {#- A timestamptz literal: the latest change the incremental model `this` already holds, minus the
        lookback var (rows committed out of ingestion order are still picked up). Read once before
        the model's query runs, so Postgres plans with a constant. '-infinity' on a full build. -#}
    {%- if execute and is_incremental() -%}
        {%- set query -%}
            select extract(epoch from coalesce(max({{ column }}), '1970-01-01'::timestamptz)
                                      - interval '{{ var("incremental_lookback") }}')
            from {{ this }}
        {%- endset -%}
        to_timestamp({{ run_query(query).columns[0].values()[0] }})
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{% endmacro %}
