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
-- Per loyalty customer and UTC day: baskets bought that day and refunds allocated that day. Sales
-- count on their sale date and refunds on their refund date, so a refund of an old basket changes
-- only the refund's day. Incremental: the days that got raw rows since this table's serving horizon
-- are recomputed (macros/daily_rollups.sql); agg_customer_daily_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{{ customers_by_day(ref('fct_sales'), ref('fct_refunds'), changed_day_filter() if is_incremental() else none) }}
