{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false,
        pre_hook="{{ record_serving_horizon(upstream=['fct_sales', 'fct_refunds']) }}",
    )
}}

-- full_refresh=false: never dropped and rebuilt (that would drop its *_live view with it); the
-- serving horizon keeps it exact incrementally. Rebuild from scratch by dropping the table.
-- Chain-wide KPIs per UTC day, every day of the calendar (zeros on a day without activity).
-- Revenue is what customers paid (gross minus discounts); refunds count on the day they were made,
-- like agg_sales_daily, so the two reconcile. Incremental: the days that got raw rows since this
-- table's serving horizon, and the calendar days it does not hold yet, are recomputed
-- (macros/daily_rollups.sql); agg_kpis_daily_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{% if is_incremental() %}
{#- The changed days, and the calendar days the table does not hold yet, read when the query runs
    (after the horizon was recorded, macros/serving_horizon.sql). A changed day dim_date does not hold
    yet (a new day, between two builds of dim_date) is in too. -#}
{% set calendar %}
    select changed.activity_date as date_day
    from ({{ changed_days(built_horizon()) }}) as changed
    union
    select calendar.date_day
    from {{ ref('dim_date') }} as calendar
    where calendar.date_day not in (select existing.activity_date from {{ this }} as existing)
{% endset %}
{{ kpis_by_day(ref('fct_sales'), ref('fct_refunds'), calendar, '= any(array(select selected.date_day from (' ~ calendar ~ ') as selected))') }}
{% else %}
{{ kpis_by_day(ref('fct_sales'), ref('fct_refunds'), 'select date_day from ' ~ ref('dim_date'), none) }}
{% endif %}
