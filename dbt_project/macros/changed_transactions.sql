{% macro changed_transactions(cutoff) %}
    {#- The baskets with anything (a line, the header, a refund) that landed after `cutoff`: the unit
        the incremental facts rebuild, since a refund or a late header changes rows of its basket.
        Models calling it declare `-- depends_on:` the three staging models. -#}
    select transaction_id from {{ ref('stg_raw__transaction_items') }} where ingested_at > {{ cutoff }}
    union
    select transaction_id from {{ ref('stg_raw__transactions') }} where ingested_at > {{ cutoff }}
    union
    select transaction_id from {{ ref('stg_raw__refunds') }} where ingested_at > {{ cutoff }}
{% endmacro %}
