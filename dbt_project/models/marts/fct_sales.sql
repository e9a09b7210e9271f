{{
    config(
        materialized='incremental',
        unique_key='sales_line_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false,
        pre_hook="{{ record_serving_horizon() }}",
        indexes=[
            {'columns': ['sale_date']},
            {'columns': ['ingested_at']},
            {'columns': ['last_ingested_at']},
        ],
    )
}}

-- full_refresh=false: never dropped and rebuilt (that would drop its *_live view with it); the
-- serving horizon keeps it exact incrementally. Rebuild from scratch by dropping the table.
-- Incremental: each run rebuilds every line of the baskets that got a line, a header or a refund
-- since this table's serving horizon (macros/serving_horizon.sql), so late lines, late headers and
-- new refunds all update the rows they belong to. fct_sales_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}
-- depends_on: {{ ref('dim_products') }}

{% if is_incremental() %}
{{ sales_lines(changed_transactions(built_horizon())) }}
{% else %}
{{ sales_lines() }}
{% endif %}
