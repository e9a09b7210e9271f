{% macro refund_allocations(refunds, lines) %}
    {#- CTEs ending in `refund_allocations`: one row per refund and basket line it covers, for the
        refunds in the CTE `refunds` and the lines in the CTE `lines` (both of the same baskets).
        A refund names a basket and a product, not a line; a basket can hold several lines of the
        same product. The refunds of a (basket, product), in event order, fill the interval
        [0, total refunded) and its lines, in line order, cover [0, total paid); each refund gets its
        overlap with each line, so no line is refunded beyond what it paid. Money refunded beyond
        what the basket paid for the product is not allocated (fct_refunds shows it). -#}
refund_ranges as (

    select
        {{ refunds }}.refund_id,
        {{ refunds }}.transaction_id,
        {{ refunds }}.product_id,
        {{ refunds }}.refund_amount,
        {{ refunds }}.ingested_at,
        sum({{ refunds }}.refund_amount) over (
            partition by {{ refunds }}.transaction_id, {{ refunds }}.product_id
            order by {{ refunds }}.refunded_at, {{ refunds }}.refund_id
            rows between unbounded preceding and current row
        ) as range_end

    from {{ refunds }}

),

line_ranges as (

    select
        {{ lines }}.sales_line_id,
        {{ lines }}.transaction_id,
        {{ lines }}.product_id,
        {{ lines }}.quantity * {{ lines }}.unit_price - {{ lines }}.discount_amount as paid_amount,
        sum({{ lines }}.quantity * {{ lines }}.unit_price - {{ lines }}.discount_amount) over (
            partition by {{ lines }}.transaction_id, {{ lines }}.product_id
            order by {{ lines }}.line_number
            rows between unbounded preceding and current row
        ) as range_end

    from {{ lines }}
    where exists (
        select 1
        from {{ refunds }} as refunded
        where refunded.transaction_id = {{ lines }}.transaction_id
            and refunded.product_id = {{ lines }}.product_id
    )

),

refund_allocations as (

    select
        refund_ranges.refund_id,
        line_ranges.sales_line_id,
        (
            least(refund_ranges.range_end, line_ranges.range_end)
            - greatest(
                refund_ranges.range_end - refund_ranges.refund_amount,
                line_ranges.range_end - line_ranges.paid_amount
            )
        )::numeric(18, 2) as allocated_amount,
        refund_ranges.ingested_at as refund_ingested_at

    from refund_ranges
    inner join line_ranges
        on refund_ranges.transaction_id = line_ranges.transaction_id
        and refund_ranges.product_id = line_ranges.product_id
        -- the two intervals overlap
        and refund_ranges.range_end - refund_ranges.refund_amount < line_ranges.range_end
        and line_ranges.range_end - line_ranges.paid_amount < refund_ranges.range_end

)
{% endmacro %}
