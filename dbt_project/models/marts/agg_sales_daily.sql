{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false,
        pre_hook="{{ record_serving_horizon(upstream=['fct_sales', 'fct_refunds']) }}",
    )
}}

-- full_refresh=false: never dropped and rebuilt (that would drop its *_live view with it); the
-- serving horizon keeps it exact incrementally. Rebuild from scratch by dropping the table.
-- Daily sales per store and product. Sales are counted on the day of the sale, refunds on the day of
-- the refund (the day the money went back), each at the store of the basket. Refunds whose basket
-- has not landed yet have no store and wait in fct_refunds (has_basket = false) until it does.
-- Incremental: the days that got raw rows since this table's serving horizon are recomputed
-- (macros/daily_rollups.sql); agg_sales_daily_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{{ sales_by_day(ref('fct_sales'), ref('fct_refunds'), changed_day_filter() if is_incremental() else none) }}
