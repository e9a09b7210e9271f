{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ record_serving_horizon(upstream=['fct_sales', 'fct_refunds']) }}",
    )
}}

-- Chain-wide KPIs per UTC day, every day of the calendar (zeros on a day without activity).
-- Revenue is what customers paid (gross minus discounts); refunds count on the day they were made,
-- like agg_sales_daily, so the two reconcile. Incremental: the days that got raw rows since this
-- table's serving horizon, and the calendar days it does not hold yet, are recomputed
-- (macros/daily_rollups.sql); agg_kpis_daily_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{% if is_incremental() %}
{#- Read as a list before the query runs (macros/date_list.sql). -#}
{% set changed_day_list = date_list(changed_days(built_horizon())) %}
{% set calendar %}
    select calendar.date_day
    from {{ ref('dim_date') }} as calendar
    where calendar.date_day in {{ changed_day_list }}
        or calendar.date_day not in (select existing.activity_date from {{ this }} as existing)
{% endset %}
{% set selected_day_list = date_list(calendar) %}
{{ kpis_by_day(ref('fct_sales'), ref('fct_refunds'), 'select date_day from ' ~ ref('dim_date') ~ ' where date_day in ' ~ selected_day_list, 'in ' ~ selected_day_list) }}
{% else %}
{{ kpis_by_day(ref('fct_sales'), ref('fct_refunds'), 'select date_day from ' ~ ref('dim_date'), none) }}
{% endif %}
