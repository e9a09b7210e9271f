{{
    config(
        materialized='incremental',
        unique_key='window_start',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['last_changed_at']}],
        pre_hook="{{ delete_vanished_reconciliation_rows() }}",
    )
}}

-- Speed layer against batch layer, per 1-minute window and product present in either. The design
-- runs the same transformations in both layers, so a non-zero delta in a closed hour comes from
-- events the stream dropped as late (see ops.late_events); deltas in open hours are expected (the
-- batch layer has not recomputed them yet). Incremental: each run recomputes every product of the
-- windows either layer wrote since the latest change the table holds (minus the lookback), and every
-- window of the hours closed since then, of the minutes with late events counted since then, and of
-- the rows whose batch row vanished (a recompute found nothing there any more: the window is
-- recomputed from the speed layer alone, or deleted by the pre-hook when neither layer has it).
-- `explained_by_late_events` marks a closed hour's deltas that the stream's late events account for.

with

-- Referenced twice: `not materialized` keeps Postgres from copying the whole table into a CTE.
speed_metrics as not materialized (

    select * from {{ ref('stg_speed__product_metrics_minute') }}

),

batch_metrics as not materialized (

    select * from {{ ref('stg_batch__product_metrics_minute') }}

),

closed_hours as (

    select * from {{ ref('stg_batch__closed_hours') }}

),

late_minutes as (

    select
        late_events.event_minute,
        sum(late_events.late_events)::bigint as late_events,
        max(late_events.updated_at) as counted_at

    from {{ ref('stg_ops__late_events') }} as late_events
    group by late_events.event_minute

),

{% if is_incremental() %}
{% set cutoff = incremental_cutoff('last_changed_at') %}
changed_hours as (

    select closed_hours.hour_start from closed_hours where closed_hours.closed_at > {{ cutoff }}

),

changed_windows as (

    select speed_metrics.window_start
    from speed_metrics
    where speed_metrics.updated_at > {{ cutoff }}
        or date_trunc('hour', speed_metrics.window_start, 'UTC') in (select changed_hours.hour_start from changed_hours)
    union
    select batch_metrics.window_start
    from batch_metrics
    where batch_metrics.computed_at > {{ cutoff }}
        or date_trunc('hour', batch_metrics.window_start, 'UTC') in (select changed_hours.hour_start from changed_hours)
    union
    select late_minutes.event_minute
    from late_minutes
    where late_minutes.counted_at > {{ cutoff }}
    union
    -- Windows whose batch row vanished since the previous build (their speed rows, if any, remain).
    select reconciliation.window_start
    from {{ this }} as reconciliation
    where reconciliation.has_batch_row
        and not exists (
            select 1
            from batch_metrics
            where batch_metrics.window_start = reconciliation.window_start
                and batch_metrics.product_id = reconciliation.product_id
        )

),
{% endif %}

selected_speed_metrics as (

    select speed_metrics.*
    from speed_metrics
    {% if is_incremental() %}
    -- `= any(array(...))`: Postgres plans for a short list and takes the key index, where `in (select ...)` on
    -- a CTE gets a guessed size and scans the whole table.
    where speed_metrics.window_start = any(array(select changed_windows.window_start from changed_windows))
    {% endif %}

),

selected_batch_metrics as (

    select batch_metrics.*
    from batch_metrics
    {% if is_incremental() %}
    where batch_metrics.window_start = any(array(select changed_windows.window_start from changed_windows))
    {% endif %}

),

compared as (

    select
        coalesce(speed_metrics.window_start, batch_metrics.window_start) as window_start,
        coalesce(speed_metrics.product_id, batch_metrics.product_id) as product_id,
        speed_metrics.product_id is not null as has_speed_row,
        batch_metrics.product_id is not null as has_batch_row,
        coalesce(speed_metrics.units, 0) as speed_units,
        coalesce(batch_metrics.units, 0) as batch_units,
        coalesce(speed_metrics.gross_revenue, 0) as speed_gross_revenue,
        coalesce(batch_metrics.gross_revenue, 0) as batch_gross_revenue,
        coalesce(speed_metrics.refund_amount, 0) as speed_refund_amount,
        coalesce(batch_metrics.refund_amount, 0) as batch_refund_amount,
        greatest(speed_metrics.updated_at, batch_metrics.computed_at) as layers_changed_at

    from selected_speed_metrics as speed_metrics
    full outer join selected_batch_metrics as batch_metrics
        on speed_metrics.window_start = batch_metrics.window_start
        and speed_metrics.product_id = batch_metrics.product_id

),

final as (

    select
        compared.window_start,
        compared.product_id,
        date_trunc('hour', compared.window_start, 'UTC') as hour_start,
        closed_hours.hour_start is not null as is_hour_closed,
        compared.has_speed_row,
        compared.has_batch_row,
        compared.speed_units,
        compared.batch_units,
        compared.batch_units - compared.speed_units as units_delta,
        compared.speed_gross_revenue::numeric(18, 2) as speed_gross_revenue,
        compared.batch_gross_revenue::numeric(18, 2) as batch_gross_revenue,
        (compared.batch_gross_revenue - compared.speed_gross_revenue)::numeric(18, 2) as gross_revenue_delta,
        compared.speed_refund_amount::numeric(18, 2) as speed_refund_amount,
        compared.batch_refund_amount::numeric(18, 2) as batch_refund_amount,
        (compared.batch_refund_amount - compared.speed_refund_amount)::numeric(18, 2) as refund_amount_delta,
        compared.batch_units = compared.speed_units
            and compared.batch_gross_revenue = compared.speed_gross_revenue
            and compared.batch_refund_amount = compared.speed_refund_amount as is_matching,
        -- The stream left late events out of the window and the batch layer counted them: in a closed
        -- hour, a delta where the batch layer has more than the stream is what they explain.
        closed_hours.hour_start is not null
            and late_minutes.event_minute is not null
            and not (
                compared.batch_units = compared.speed_units
                and compared.batch_gross_revenue = compared.speed_gross_revenue
                and compared.batch_refund_amount = compared.speed_refund_amount
            )
            and compared.batch_units >= compared.speed_units
            and compared.batch_gross_revenue >= compared.speed_gross_revenue
            and compared.batch_refund_amount >= compared.speed_refund_amount as explained_by_late_events,
        coalesce(late_minutes.late_events, 0) as late_events,
        greatest(compared.layers_changed_at, closed_hours.closed_at, late_minutes.counted_at) as last_changed_at

    from compared
    left join closed_hours
        on date_trunc('hour', compared.window_start, 'UTC') = closed_hours.hour_start
    left join late_minutes
        on compared.window_start = late_minutes.event_minute

)

select * from final
