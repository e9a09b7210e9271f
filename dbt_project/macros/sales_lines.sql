{% macro sales_lines(baskets=none) %}
    {#- The one definition of fct_sales rows, for every basket or for those `baskets` (a query
        returning transaction_id) only: the incremental table builds the baskets changed since its
        horizon with it, fct_sales_live the baskets landed since. Declares its sources with
        `-- depends_on:` in the calling model. -#}
with

lines as (

    select * from {{ ref('stg_raw__transaction_items') }}

),

transactions as (

    select * from {{ ref('stg_raw__transactions') }}

),

refunds as (

    select * from {{ ref('stg_raw__refunds') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

{% if baskets is not none %}
selected_baskets as (

    {{ baskets }}

),
{% endif %}

selected_lines as (

    select lines.*
    from lines
    {% if baskets is not none %}
    -- `= any(array(...))`: Postgres probes the key index for each basket, whatever it guesses the
    -- selection's size to be (a join or `in (select ...)` may hash and scan the whole table).
    where lines.transaction_id = any(array(select selected_baskets.transaction_id from selected_baskets))
    {% endif %}

),

selected_refunds as (

    select refunds.*
    from refunds
    {% if baskets is not none %}
    where refunds.transaction_id = any(array(select selected_baskets.transaction_id from selected_baskets))
    {% endif %}

),

{{ refund_allocations('selected_refunds', 'selected_lines') }},

-- The basket header join happens here rather than in an intermediate view, so that Postgres can
-- filter the lines of the selected baskets before joining.
lines_with_baskets as (

    select
        selected_lines.*,
        transactions.customer_id,
        transactions.channel,
        transactions.payment_method,
        (selected_lines.quantity * selected_lines.unit_price)::numeric(18, 2) as gross_amount,
        (selected_lines.quantity * selected_lines.unit_price - selected_lines.discount_amount)::numeric(18, 2)
            as paid_amount,
        greatest(selected_lines.ingested_at, transactions.ingested_at) as basket_ingested_at

    from selected_lines
    {% if baskets is not none %}
    -- A selection (incremental, live) probes the header's key for each of its lines: a join would be
    -- planned from the selection's estimate, and a low one hashes and scans the whole header table.
    left join lateral (
        select header.*
        from transactions as header
        where header.transaction_id = selected_lines.transaction_id
        offset 0  -- keeps the subquery a per-line probe (the planner would flatten it into a join)
    ) as transactions on true
    {% else %}
    left join transactions
        on selected_lines.transaction_id = transactions.transaction_id
    {% endif %}

),

line_refunds as (

    select
        refund_allocations.sales_line_id,
        sum(refund_allocations.allocated_amount) as refunded_amount,
        max(refund_allocations.refund_ingested_at) as refund_ingested_at

    from refund_allocations
    group by refund_allocations.sales_line_id

),

final as (

    select
        lines_with_baskets.sales_line_id,
        lines_with_baskets.transaction_id,
        lines_with_baskets.line_number,
        lines_with_baskets.store_id,
        lines_with_baskets.product_id,
        products.product_version_id,
        lines_with_baskets.customer_id,
        lines_with_baskets.channel,
        lines_with_baskets.payment_method,
        lines_with_baskets.customer_id is null as is_guest,
        lines_with_baskets.quantity,
        lines_with_baskets.unit_price,
        lines_with_baskets.gross_amount,
        lines_with_baskets.discount_amount,
        lines_with_baskets.paid_amount,
        coalesce(line_refunds.refunded_amount, 0)::numeric(18, 2) as refunded_amount,
        (lines_with_baskets.paid_amount - coalesce(line_refunds.refunded_amount, 0))::numeric(18, 2) as net_amount,
        line_refunds.sales_line_id is not null as is_refunded,
        {{ utc_date('lines_with_baskets.transacted_at') }} as sale_date,
        lines_with_baskets.transacted_at as sold_at,
        lines_with_baskets.ingested_at,
        greatest(lines_with_baskets.basket_ingested_at, line_refunds.refund_ingested_at) as last_ingested_at

    from lines_with_baskets
    left join line_refunds
        on lines_with_baskets.sales_line_id = line_refunds.sales_line_id
    {% if baskets is not none %}
    -- Per line through dim_products' product_id index, for the same reason as the header.
    left join lateral (
        select version.product_version_id
        from products as version
        where version.product_id = lines_with_baskets.product_id
            and lines_with_baskets.transacted_at >= version.valid_from
            and (lines_with_baskets.transacted_at < version.valid_to or version.valid_to is null)
        offset 0
    ) as products on true
    {% else %}
    left join products
        on lines_with_baskets.product_id = products.product_id
        and lines_with_baskets.transacted_at >= products.valid_from
        and (lines_with_baskets.transacted_at < products.valid_to or products.valid_to is null)
    {% endif %}

)

select * from final
{% endmacro %}
