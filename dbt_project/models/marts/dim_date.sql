-- A calendar spanning every UTC date that holds a sale or a refund (the minute metrics come from
-- the same events). Bounds from the facts' indexed date columns: cheap on every run.

with

sales as (

    select * from {{ ref('fct_sales') }}

),

refunds as (

    select * from {{ ref('fct_refunds') }}

),

sales_bounds as (

    select min(sales.sale_date) as first_date, max(sales.sale_date) as last_date
    from sales

),

refunds_bounds as (

    select min(refunds.refund_date) as first_date, max(refunds.refund_date) as last_date
    from refunds

),

bounds as (

    select
        least(sales_bounds.first_date, refunds_bounds.first_date) as first_date,
        greatest(sales_bounds.last_date, refunds_bounds.last_date) as last_date

    from sales_bounds
    cross join refunds_bounds

),

spine as (

    select generate_series(bounds.first_date, bounds.last_date, interval '1 day')::date as date_day

    from bounds
    where bounds.first_date is not null

),

final as (

    select
        spine.date_day,
        extract(isodow from spine.date_day)::integer as iso_day_of_week,
        trim(to_char(spine.date_day, 'Day')) as day_name,
        extract(isodow from spine.date_day) in (6, 7) as is_weekend,
        date_trunc('week', spine.date_day)::date as week_start_date,
        date_trunc('month', spine.date_day)::date as month_start_date,
        trim(to_char(spine.date_day, 'Month')) as month_name,
        extract(quarter from spine.date_day)::integer as quarter_of_year,
        extract(year from spine.date_day)::integer as year_number

    from spine

)

select * from final
