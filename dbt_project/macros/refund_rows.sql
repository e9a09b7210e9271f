{% macro refund_rows(baskets=none) %}
    {#- The one definition of fct_refunds rows, for every basket or for those `baskets` (a query
        returning transaction_id) only, as sales_lines() is for fct_sales. -#}
with

refunds as (

    select * from {{ ref('stg_raw__refunds') }}

),

transactions as (

    select * from {{ ref('stg_raw__transactions') }}

),

lines as (

    select * from {{ ref('stg_raw__transaction_items') }}

),

{% if baskets is not none %}
selected_baskets as (

    {{ baskets }}

),
{% endif %}

selected_refunds as (

    select refunds.*
    from refunds
    {% if baskets is not none %}
    -- `= any(array(...))`: a probe of the basket index per basket (see macros/sales_lines.sql).
    where refunds.transaction_id = any(array(select selected_baskets.transaction_id from selected_baskets))
    {% endif %}

),

-- The lines of the selected refunds' baskets only (when baskets are selected), for the allocation.
selected_lines as (

    select lines.*
    from lines
    {% if baskets is not none %}
    where lines.transaction_id = any(array(select selected_refunds.transaction_id from selected_refunds))
    {% endif %}

),

{{ refund_allocations('selected_refunds', 'selected_lines') }},

allocated_per_refund as (

    select
        refund_allocations.refund_id,
        sum(refund_allocations.allocated_amount) as allocated_amount

    from refund_allocations
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
    {% if baskets is not none %}
    -- A selection probes the header's key per refund (see macros/sales_lines.sql).
    left join lateral (
        select header.*
        from transactions as header
        where header.transaction_id = selected_refunds.transaction_id
        offset 0
    ) as transactions on true
    {% else %}
    left join transactions
        on selected_refunds.transaction_id = transactions.transaction_id
    {% endif %}
    left join allocated_per_refund
        on selected_refunds.refund_id = allocated_per_refund.refund_id

)

select * from final
{% endmacro %}
