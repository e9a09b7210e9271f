{% macro changed_transactions(horizon) %}
    {#- The baskets with anything (a line, the header, a refund) landed by a transaction id from
        `horizon` on: the unit the incremental facts rebuild and the live views recompute, since a
        refund or a late header changes rows of its basket. Models calling it declare
        `-- depends_on:` the three staging models. -#}
    select transaction_id from {{ ref('stg_raw__transaction_items') }} where landed_xid >= {{ horizon }}
    union
    select transaction_id from {{ ref('stg_raw__transactions') }} where landed_xid >= {{ horizon }}
    union
    select transaction_id from {{ ref('stg_raw__refunds') }} where landed_xid >= {{ horizon }}
{% endmacro %}

{% macro changed_days(horizon) %}
    {#- The UTC days whose rollups change with the raw rows landed from `horizon` on: the sale day of
        every changed basket and the refund day of each of its refunds (a line or header landing
        changes its basket's refunds' allocation and store). -#}
    with changed as (

        {{ changed_transactions(horizon) }}

    )

    select {{ utc_date('lines.transacted_at') }} as activity_date
    from {{ ref('stg_raw__transaction_items') }} as lines
    -- `= any(array(...))`: a key-index probe per changed basket (see macros/sales_lines.sql).
    where lines.transaction_id = any(array(select changed.transaction_id from changed))
    union
    select {{ utc_date('refunds.refunded_at') }}
    from {{ ref('stg_raw__refunds') }} as refunds
    where refunds.transaction_id = any(array(select changed.transaction_id from changed))
{% endmacro %}
