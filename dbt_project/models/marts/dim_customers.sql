-- Loyalty customers only: guest baskets (no customer_id) have no customer to describe. Summed from
-- agg_customer_daily (customers × days), far smaller than the sales lines.

with

customer_days as (

    select * from {{ ref('agg_customer_daily') }}

),

customers as (

    select
        customer_days.customer_id,
        min(customer_days.first_purchase_at) as first_purchase_at,
        max(customer_days.last_purchase_at) as last_purchase_at,
        sum(customer_days.transactions)::bigint as lifetime_transactions,
        sum(customer_days.units)::bigint as lifetime_units,
        sum(customer_days.gross_amount)::numeric(18, 2) as gross_amount,
        sum(customer_days.discount_amount)::numeric(18, 2) as discount_amount,
        sum(customer_days.refunded_amount)::numeric(18, 2) as refunded_amount,
        (
            sum(customer_days.gross_amount) - sum(customer_days.discount_amount)
            - sum(customer_days.refunded_amount)
        )::numeric(18, 2) as net_amount

    from customer_days
    group by customer_days.customer_id

)

select * from customers
