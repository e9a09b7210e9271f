{#- The one definition of each daily rollup, over given fact relations and days: the incremental
    tables run them over fct_sales/fct_refunds for the days changed since their horizon, the *_live
    views over fct_sales_live/fct_refunds_live for the days changed since. `days` is the operand of
    a predicate on the day column (`in (<literal list>)` or `= any(array(<subquery>))`, which
    Postgres pushes into the live views' branches); none means every day. Sales count on their sale date,
    refunds on their refund date (once their basket has landed, at its store). -#}

{% macro day_filter(column, days) -%}
    {%- if days is not none %}{{ column }} {{ days }}{% else %}true{% endif -%}
{%- endmacro %}

{% macro kpis_by_day(sales, refunds, calendar, days) %}
with

calendar as (

    {{ calendar }}

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

    from {{ sales }} as sales
    where {{ day_filter('sales.sale_date', days) }}
    group by sales.sale_date

),

daily_refunds as (

    select
        refunds.refund_date,
        count(*) as refunds,
        sum(refunds.refund_amount) as refunded_amount,
        max(refunds.last_ingested_at) as last_ingested_at

    from {{ refunds }} as refunds
    where refunds.has_basket and {{ day_filter('refunds.refund_date', days) }}
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

    from calendar
    left join daily_sales
        on calendar.date_day = daily_sales.sale_date
    left join daily_refunds
        on calendar.date_day = daily_refunds.refund_date

)

select * from final
{% endmacro %}

{% macro sales_by_day(sales, refunds, days) %}
with

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

    from {{ sales }} as sales
    where {{ day_filter('sales.sale_date', days) }}
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

    from {{ refunds }} as refunds
    where refunds.has_basket and {{ day_filter('refunds.refund_date', days) }}
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
{% endmacro %}

{% macro customers_by_day(sales, refunds, days) %}
with

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

    from {{ sales }} as sales
    where sales.customer_id is not null and {{ day_filter('sales.sale_date', days) }}
    group by sales.customer_id, sales.sale_date

),

daily_refunds as (

    select
        refunds.customer_id,
        refunds.refund_date as activity_date,
        sum(refunds.allocated_amount) as refunded_amount,
        max(refunds.last_ingested_at) as last_ingested_at

    from {{ refunds }} as refunds
    where refunds.customer_id is not null and {{ day_filter('refunds.refund_date', days) }}
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
{% endmacro %}

{% macro changed_day_filter() -%}
    {#- An incremental rollup's day predicate: the days changed since its horizon, read when the query
        runs (after the new horizon was recorded, so every row below it is in), as an array Postgres
        plans with the facts' date index. -#}
    = any(array(select changed.activity_date from ({{ changed_days(built_horizon()) }}) as changed))
{%- endmacro %}
