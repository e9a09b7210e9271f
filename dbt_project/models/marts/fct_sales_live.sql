{{ config(materialized='view') }}

-- The lambda view of fct_sales (README: "Live serving"): the built table's lines, except the baskets
-- that got raw rows since its serving horizon, plus those baskets' lines computed from raw with the
-- same definition (macros/sales_lines.sql). A view: a basket is here the moment the stream commits it.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}
-- depends_on: {{ ref('dim_products') }}

{{ live_view(
    ref('fct_sales'),
    'transaction_id',
    changed_transactions(serving_horizon('fct_sales')),
    sales_lines('select live_slice.transaction_id from live_slice'),
) }}
