{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- A refund names a basket and a product, not a line; a basket can hold several lines of the same
-- product. Refunds are allocated to those lines in line order, never more than a line's paid amount:
-- the refunds of a (basket, product), in event order, fill the interval [0, total refunded) and the
-- lines, in line order, cover [0, total paid); each refund gets the overlap with each line. Money
-- refunded beyond what the basket paid for the product is not allocated (fct_refunds shows it).
-- A table rather than a view: fct_sales and fct_refunds both read it, and Postgres plans window
-- functions inside views poorly once a test's filter is pushed into them. Incremental: the rows of
-- every basket that changed since the latest change the table holds (minus the lookback) are
-- recomputed (unique_key transaction_id: delete+insert replaces all rows of those baskets).
-- Read by changed_transactions() in incremental runs:
-- depends_on: {{ ref('stg_raw__transactions') }}

with

refunds as (

    select * from {{ ref('stg_raw__refunds') }}

),

lines as (

    select * from {{ ref('stg_raw__transaction_items') }}

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
    where refunds.transaction_id in (select changed_transactions.transaction_id from changed_transactions)
    {% endif %}

),

refund_ranges as (

    select
        refunds.refund_id,
        refunds.transaction_id,
        refunds.product_id,
        refunds.refund_amount,
        refunds.ingested_at,
        sum(refunds.refund_amount) over (
            partition by refunds.transaction_id, refunds.product_id
            order by refunds.refunded_at, refunds.refund_id
            rows between unbounded preceding and current row
        ) as range_end

    from selected_refunds as refunds

),

refunded_lines as (

    select
        lines.sales_line_id,
        lines.transaction_id,
        lines.product_id,
        lines.line_number,
        lines.quantity * lines.unit_price - lines.discount_amount as paid_amount,
        lines.ingested_at

    from lines
    -- `= any(array(...))`: Postgres plans for a short list and takes the key index, where `in (select ...)` on
    -- a CTE gets a guessed size and scans the whole table.
    where lines.transaction_id = any(array(select refunds.transaction_id from selected_refunds as refunds))
        and exists (
            select 1
            from selected_refunds as refunds
            where refunds.transaction_id = lines.transaction_id
                and refunds.product_id = lines.product_id
        )

),

line_ranges as (

    select
        refunded_lines.sales_line_id,
        refunded_lines.transaction_id,
        refunded_lines.product_id,
        refunded_lines.paid_amount,
        refunded_lines.ingested_at,
        sum(refunded_lines.paid_amount) over (
            partition by refunded_lines.transaction_id, refunded_lines.product_id
            order by refunded_lines.line_number
            rows between unbounded preceding and current row
        ) as range_end

    from refunded_lines

),

allocated as (

    select
        refund_ranges.refund_id,
        line_ranges.sales_line_id,
        refund_ranges.transaction_id,
        refund_ranges.product_id,
        (
            least(refund_ranges.range_end, line_ranges.range_end)
            - greatest(
                refund_ranges.range_end - refund_ranges.refund_amount,
                line_ranges.range_end - line_ranges.paid_amount
            )
        )::numeric(18, 2) as allocated_amount,
        refund_ranges.ingested_at as refund_ingested_at,
        greatest(refund_ranges.ingested_at, line_ranges.ingested_at) as last_ingested_at

    from refund_ranges
    inner join line_ranges
        on refund_ranges.transaction_id = line_ranges.transaction_id
        and refund_ranges.product_id = line_ranges.product_id
        -- the two intervals overlap
        and refund_ranges.range_end - refund_ranges.refund_amount < line_ranges.range_end
        and line_ranges.range_end - line_ranges.paid_amount < refund_ranges.range_end

)

select * from allocated
