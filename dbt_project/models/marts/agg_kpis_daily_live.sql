{{ config(materialized='view') }}

-- The lambda view of agg_kpis_daily (README: "Live serving"): the built table's days, except the days
-- that got raw rows since its serving horizon, plus those days recomputed over fct_sales_live and
-- fct_refunds_live with the same definition (macros/daily_rollups.sql).
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

with

built as (

    select * from {{ ref('agg_kpis_daily') }}

),

live_days as (

    {{ changed_days(serving_horizon('agg_kpis_daily')) }}

),

built_days as (

    select
        built.*,
        false as is_provisional

    from built
    where built.activity_date not in (select live_days.activity_date from live_days)

),

live_rows as (

    select
        live.*,
        true as is_provisional

    from ({{ kpis_by_day(ref('fct_sales_live'), ref('fct_refunds_live'), 'select live_days.activity_date as date_day from live_days', '= any(array(select live_days.activity_date from live_days))') }}) as live

),

final as (

    select * from built_days
    union all
    select * from live_rows

)

select * from final
