{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Chain-wide KPIs per UTC day, every day of the calendar (zeros on a day without activity).
-- Revenue is what customers paid (gross minus discounts); refunds count on the day they were made,
-- like agg_sales_daily, so the two reconcile. Incremental like agg_sales_daily; calendar days the
-- table does not hold yet are added.

with

calendar as (

    select * from {{ ref('dim_date') }}

),

sales as (

    select * from {{ ref('fct_sales') }}

),

refunds as (

    select * from {{ ref('fct_refunds') }}

),

{#- The days with new lines or refunds and the calendar days the table does not hold yet, read as a
    list before the query runs (macros/date_list.sql). -#}
{% if is_incremental() %}
{% set selected_days_query %}
    select calendar.date_day
    from {{ ref('dim_date') }} as calendar
    where calendar.date_day in ({{ changed_activity_days(incremental_cutoff()) }})
        or calendar.date_day not in (select existing.activity_date from {{ this }} as existing)
{% endset %}
{% set selected_day_list = date_list(selected_days_query) %}
{% endif %}

selected_days as (

    select calendar.date_day
    from calendar
    {% if is_incremental() %}
    where calendar.date_day in {{ selected_day_list }}
    {% endif %}

),

daily_sales as (

    select
        sales.sale_date,
        count(distinct sales.transaction_id) as transactions,
        count(distinct sales.customer_id) as active_customers,
        sum(sales.quantity) as units_sold,
        sum(sales.gross_amount) as gross_amount,
        sum(sales.discount_amount) as discount_amount,
        sum(sales.paid_amount) as revenue,
        max(sales.ingested_at) as last_ingested_at

    from sales
    {% if is_incremental() %}
    where sales.sale_date in {{ selected_day_list }}
    {% endif %}
    group by sales.sale_date

),

daily_refunds as (

    select
        refunds.refund_date,
        count(*) as refunds,
        sum(refunds.refund_amount) as refunded_amount,
        max(refunds.last_ingested_at) as last_ingested_at

    from refunds
    where refunds.has_basket
    {% if is_incremental() %}
        and refunds.refund_date in {{ selected_day_list }}
    {% endif %}
    group by refunds.refund_date

),

final as (

    select
        calendar.date_day as activity_date,
        coalesce(daily_sales.transactions, 0) as transactions,
        coalesce(daily_sales.active_customers, 0) as active_customers,
        coalesce(daily_sales.units_sold, 0) as units_sold,
        coalesce(daily_refunds.refunds, 0) as refunds,
        coalesce(daily_sales.gross_amount, 0)::numeric(18, 2) as gross_amount,
        coalesce(daily_sales.discount_amount, 0)::numeric(18, 2) as discount_amount,
        coalesce(daily_sales.revenue, 0)::numeric(18, 2) as revenue,
        coalesce(daily_refunds.refunded_amount, 0)::numeric(18, 2) as refunded_amount,
        (coalesce(daily_sales.revenue, 0) - coalesce(daily_refunds.refunded_amount, 0))::numeric(18, 2)
            as net_revenue,
        round(
            coalesce(daily_refunds.refunded_amount, 0) / nullif(daily_sales.revenue, 0), 4
        )::numeric(9, 4) as refund_rate,
        round(daily_sales.revenue / nullif(daily_sales.transactions, 0), 2)::numeric(18, 2)
            as average_basket_value,
        greatest(daily_sales.last_ingested_at, daily_refunds.last_ingested_at) as last_ingested_at

    from selected_days as calendar
    left join daily_sales
        on calendar.date_day = daily_sales.sale_date
    left join daily_refunds
        on calendar.date_day = daily_refunds.refund_date

)

select * from final
