{{ config(materialized='view') }}

-- The lambda view of fct_refunds (README: "Live serving"): the built table's refunds, except the
-- baskets that got raw rows since its serving horizon, plus those baskets' refunds computed from raw
-- with the same definition (macros/refund_rows.sql).
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{{ live_view(
    ref('fct_refunds'),
    'transaction_id',
    changed_transactions(serving_horizon('fct_refunds')),
    refund_rows('select live_slice.transaction_id from live_slice'),
) }}
