{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Per loyalty customer and UTC day: baskets bought that day and refunds allocated that day. Sales
-- count on their sale date and refunds on their refund date, so a refund of an old basket changes
-- only the refund's day: incremental runs recompute just the days that got new lines or refunds.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

refunds as (

    select * from {{ ref('fct_refunds') }}

),

{#- The days with new lines or refunds, read as a list before the query runs (macros/date_list.sql). -#}
{% set changed_days = date_list(changed_activity_days(incremental_cutoff())) if is_incremental() else none %}

daily_purchases as (

    select
        sales.customer_id,
        sales.sale_date as activity_date,
        count(distinct sales.transaction_id) as transactions,
        sum(sales.quantity) as units,
        sum(sales.gross_amount) as gross_amount,
        sum(sales.discount_amount) as discount_amount,
        min(sales.sold_at) as first_purchase_at,
        max(sales.sold_at) as last_purchase_at,
        max(sales.ingested_at) as last_ingested_at

    from sales
    where sales.customer_id is not null
    {% if is_incremental() %}
        and sales.sale_date in {{ changed_days }}
    {% endif %}
    group by sales.customer_id, sales.sale_date

),

daily_refunds as (

    select
        refunds.customer_id,
        refunds.refund_date as activity_date,
        sum(refunds.allocated_amount) as refunded_amount,
        max(refunds.last_ingested_at) as last_ingested_at

    from refunds
    where refunds.customer_id is not null
    {% if is_incremental() %}
        and refunds.refund_date in {{ changed_days }}
    {% endif %}
    group by refunds.customer_id, refunds.refund_date

),

final as (

    select
        coalesce(daily_purchases.customer_id, daily_refunds.customer_id) as customer_id,
        coalesce(daily_purchases.activity_date, daily_refunds.activity_date) as activity_date,
        coalesce(daily_purchases.transactions, 0) as transactions,
        coalesce(daily_purchases.units, 0)::bigint as units,
        coalesce(daily_purchases.gross_amount, 0)::numeric(18, 2) as gross_amount,
        coalesce(daily_purchases.discount_amount, 0)::numeric(18, 2) as discount_amount,
        coalesce(daily_refunds.refunded_amount, 0)::numeric(18, 2) as refunded_amount,
        daily_purchases.first_purchase_at,
        daily_purchases.last_purchase_at,
        greatest(daily_purchases.last_ingested_at, daily_refunds.last_ingested_at) as last_ingested_at

    from daily_purchases
    full outer join daily_refunds
        on daily_purchases.customer_id = daily_refunds.customer_id
        and daily_purchases.activity_date = daily_refunds.activity_date

)

select * from final
