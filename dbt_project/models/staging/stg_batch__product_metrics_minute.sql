with

source as (

    select * from {{ source('batch', 'product_metrics_minute') }}

),

renamed as (

    -- Metric columns keep the names both layers share, so the serving view can union them.
    select
        -- ids
        batch_run_id,
        product_id,

        -- numerics
        units,
        gross_revenue,
        discount,
        transactions,
        refunds,
        refund_amount,

        -- timestamps
        window_start,
        window_start + interval '1 minute' as window_end,
        computed_at

    from source

)

select * from renamed
