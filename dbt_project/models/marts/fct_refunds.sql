{{
    config(
        materialized='incremental',
        unique_key='refund_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['last_ingested_at']}],
    )
}}

-- Incremental like fct_sales: every refund of a basket that changed since the latest change this
-- table holds (minus the lookback) is rebuilt, so a basket landing after its refund fills in the
-- refund's store and customer.
-- Read by changed_transactions() in incremental runs:
-- depends_on: {{ ref('stg_raw__transaction_items') }}

with

refunds as (

    select * from {{ ref('stg_raw__refunds') }}

),

transactions as (

    select * from {{ ref('stg_raw__transactions') }}

),

refund_allocations as (

    select * from {{ ref('int_refunds_allocated') }}

),

{% if is_incremental() %}
changed_transactions as (

    {{ changed_transactions(incremental_cutoff()) }}

),
{% endif %}

selected_refunds as (

    select refunds.*
    from refunds
    {% if is_incremental() %}
    -- `= any(array(...))`: Postgres plans for a short list and takes the key index, where `in (select ...)` on
    -- a CTE gets a guessed size and scans the whole table.
    where refunds.transaction_id = any(array(select changed_transactions.transaction_id from changed_transactions))
    {% endif %}

),

-- The baskets and allocations of the selected refunds only: they belong to the same changed baskets.
selected_transactions as (

    select transactions.*
    from transactions
    {% if is_incremental() %}
    where transactions.transaction_id = any(array(select changed_transactions.transaction_id from changed_transactions))
    {% endif %}

),

allocated_per_refund as (

    select
        refund_allocations.refund_id,
        sum(refund_allocations.allocated_amount) as allocated_amount

    from refund_allocations
    {% if is_incremental() %}
    -- A small table without an index on the basket: a hashed semi-join, not `= any(array(...))`.
    where refund_allocations.transaction_id in (select changed_transactions.transaction_id from changed_transactions)
    {% endif %}
    group by refund_allocations.refund_id

),

final as (

    select
        selected_refunds.refund_id,
        selected_refunds.transaction_id,
        selected_refunds.product_id,
        transactions.store_id,
        transactions.customer_id,
        selected_refunds.reason,
        selected_refunds.quantity,
        selected_refunds.refund_amount,
        coalesce(allocated_per_refund.allocated_amount, 0)::numeric(18, 2) as allocated_amount,
        (selected_refunds.refund_amount - coalesce(allocated_per_refund.allocated_amount, 0))::numeric(18, 2)
            as unallocated_amount,
        transactions.transaction_id is not null as has_basket,
        {{ utc_date('selected_refunds.refunded_at') }} as refund_date,
        selected_refunds.refunded_at,
        transactions.transacted_at as sold_at,
        selected_refunds.ingested_at,
        greatest(selected_refunds.ingested_at, transactions.ingested_at) as last_ingested_at

    from selected_refunds
    left join selected_transactions as transactions
        on selected_refunds.transaction_id = transactions.transaction_id
    left join allocated_per_refund
        on selected_refunds.refund_id = allocated_per_refund.refund_id

)

select * from final
