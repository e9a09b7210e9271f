with

source as (

    select * from {{ source('speed', 'product_metrics_minute') }}

),

renamed as (

    -- Metric columns keep the names both layers share, so the serving view can union them.
    select
        -- ids
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
        updated_at

    from source

)

select * from renamed
