{{ config(materialized='view') }}

-- The lambda serving view. A window whose hour the batch layer has closed (batch.closed_hours) is
-- served from the batch layer and is final; any other window (the hours since the last batch run,
-- or an hour a failed run left open) is served from the speed layer and may still change. A view,
-- so the speed layer's rows are visible the moment they are committed.

with

speed_metrics as (

    select * from {{ ref('stg_speed__product_metrics_minute') }}

),

batch_metrics as (

    select * from {{ ref('stg_batch__product_metrics_minute') }}

),

closed_hours as (

    select * from {{ ref('stg_batch__closed_hours') }}

),

final_windows as (

    select
        batch_metrics.window_start,
        batch_metrics.window_end,
        batch_metrics.product_id,
        batch_metrics.units,
        batch_metrics.gross_revenue,
        batch_metrics.discount,
        batch_metrics.transactions,
        batch_metrics.refunds,
        batch_metrics.refund_amount,
        true as is_final,
        'batch'::text as source_layer,
        batch_metrics.batch_run_id,
        batch_metrics.computed_at as updated_at

    from batch_metrics
    inner join closed_hours
        on date_trunc('hour', batch_metrics.window_start, 'UTC') = closed_hours.hour_start

),

open_windows as (

    select
        speed_metrics.window_start,
        speed_metrics.window_end,
        speed_metrics.product_id,
        speed_metrics.units,
        speed_metrics.gross_revenue,
        speed_metrics.discount,
        speed_metrics.transactions,
        speed_metrics.refunds,
        speed_metrics.refund_amount,
        false as is_final,
        'speed'::text as source_layer,
        null::text as batch_run_id,
        speed_metrics.updated_at

    from speed_metrics
    where not exists (
        select 1
        from closed_hours
        where closed_hours.hour_start = date_trunc('hour', speed_metrics.window_start, 'UTC')
    )

),

served as (

    select * from final_windows
    union all
    select * from open_windows

)

select * from served
