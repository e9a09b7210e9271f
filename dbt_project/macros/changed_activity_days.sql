{% macro changed_activity_days(cutoff) %}
    {#- The UTC days whose daily rollups change with the sales lines and refunds that landed after
        `cutoff`: sale days of new lines, refund days of new or completed refunds. -#}
    select fct_sales.sale_date as activity_date
    from {{ ref('fct_sales') }} as fct_sales
    where fct_sales.ingested_at > {{ cutoff }}
    union
    select fct_refunds.refund_date
    from {{ ref('fct_refunds') }} as fct_refunds
    where fct_refunds.last_ingested_at > {{ cutoff }}
{% endmacro %}
