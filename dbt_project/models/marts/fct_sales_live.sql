{{ config(materialized='view') }}

-- The lambda view of fct_sales (README: "Live serving"): the built table's lines, except the baskets
-- that got raw rows since its serving horizon, plus those baskets' lines computed from raw with the
-- same definition (macros/sales_lines.sql). A view: a basket is here the moment the stream commits it.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}
-- depends_on: {{ ref('dim_products') }}

with

built as (

    select * from {{ ref('fct_sales') }}

),

live_baskets as (

    {{ changed_transactions(serving_horizon('fct_sales')) }}

),

built_lines as (

    select
        built.*,
        false as is_provisional

    from built
    where built.transaction_id not in (select live_baskets.transaction_id from live_baskets)

),

live_lines as (

    select
        live.*,
        true as is_provisional

    from ({{ sales_lines('select live_baskets.transaction_id from live_baskets') }}) as live

),

final as (

    select * from built_lines
    union all
    select * from live_lines

)

select * from final
