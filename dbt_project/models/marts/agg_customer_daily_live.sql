{{ config(materialized='view') }}

-- The lambda view of agg_customer_daily (README: "Live serving"): the built table's days, except the days
-- that got raw rows since its serving horizon, plus those days recomputed over fct_sales_live and
-- fct_refunds_live with the same definition (macros/daily_rollups.sql).
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{{ live_view(
    ref('agg_customer_daily'),
    'activity_date',
    changed_days(serving_horizon('agg_customer_daily')),
    customers_by_day(
        ref('fct_sales_live'),
        ref('fct_refunds_live'),
        '= live_slice.activity_date',
    ),
    per_key=true,
) }}
