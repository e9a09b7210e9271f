{{ config(materialized='view') }}

-- The lambda view of fct_refunds (README: "Live serving"): the built table's refunds, except the baskets
-- that got raw rows since its serving horizon, plus those baskets' refunds computed from raw with the
-- same definition (macros/refund_rows.sql). A view: a basket is here the moment the stream commits it.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

with

built as (

    select * from {{ ref('fct_refunds') }}

),

live_baskets as (

    {{ changed_transactions(serving_horizon('fct_refunds')) }}

),

built_refunds as (

    select
        built.*,
        false as is_provisional

    from built
    where built.transaction_id not in (select live_baskets.transaction_id from live_baskets)

),

live_refunds as (

    select
        live.*,
        true as is_provisional

    from ({{ refund_rows('select live_baskets.transaction_id from live_baskets') }}) as live

),

final as (

    select * from built_refunds
    union all
    select * from live_refunds

)

select * from final
