{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Sales are counted on the day of the sale, refunds on the day of the refund (the day the money
-- went back), each at the store of the basket. Refunds whose basket has not landed yet have no
-- store and wait in fct_refunds (has_basket = false) until it does. Incremental: each run recomputes
-- the days that got new lines or refunds since the latest change the table holds (minus the lookback).

with

sales as (

    select * from {{ ref('fct_sales') }}

),

refunds as (

    select * from {{ ref('fct_refunds') }}

),

{#- The days with new lines or refunds, read as a list before the query runs (macros/date_list.sql). -#}
{% set changed_days = date_list(changed_activity_days(incremental_cutoff())) if is_incremental() else none %}

daily_sales as (

    select
        sales.sale_date as activity_date,
        sales.store_id,
        sales.product_id,
        sum(sales.quantity) as units_sold,
        count(distinct sales.transaction_id) as transactions,
        sum(sales.gross_amount) as gross_amount,
        sum(sales.discount_amount) as discount_amount,
        max(sales.ingested_at) as last_ingested_at

    from sales
    {% if is_incremental() %}
    where sales.sale_date in {{ changed_days }}
    {% endif %}
    group by sales.sale_date, sales.store_id, sales.product_id

),

daily_refunds as (

    select
        refunds.refund_date as activity_date,
        refunds.store_id,
        refunds.product_id,
        count(*) as refunds,
        sum(refunds.refund_amount) as refunded_amount,
        max(refunds.last_ingested_at) as last_ingested_at

    from refunds
    where refunds.has_basket
    {% if is_incremental() %}
        and refunds.refund_date in {{ changed_days }}
    {% endif %}
    group by refunds.refund_date, refunds.store_id, refunds.product_id

),

final as (

    select
        coalesce(daily_sales.activity_date, daily_refunds.activity_date) as activity_date,
        coalesce(daily_sales.store_id, daily_refunds.store_id) as store_id,
        coalesce(daily_sales.product_id, daily_refunds.product_id) as product_id,
        coalesce(daily_sales.units_sold, 0) as units_sold,
        coalesce(daily_sales.transactions, 0) as transactions,
        coalesce(daily_refunds.refunds, 0) as refunds,
        coalesce(daily_sales.gross_amount, 0)::numeric(18, 2) as gross_amount,
        coalesce(daily_sales.discount_amount, 0)::numeric(18, 2) as discount_amount,
        coalesce(daily_refunds.refunded_amount, 0)::numeric(18, 2) as refunded_amount,
        (
            coalesce(daily_sales.gross_amount, 0)
            - coalesce(daily_sales.discount_amount, 0)
            - coalesce(daily_refunds.refunded_amount, 0)
        )::numeric(18, 2) as net_amount,
        greatest(daily_sales.last_ingested_at, daily_refunds.last_ingested_at) as last_ingested_at

    from daily_sales
    full outer join daily_refunds
        on daily_sales.activity_date = daily_refunds.activity_date
        and daily_sales.store_id = daily_refunds.store_id
        and daily_sales.product_id = daily_refunds.product_id

)

select * from final
