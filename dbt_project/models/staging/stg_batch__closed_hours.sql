with

source as (

    select * from {{ source('batch', 'closed_hours') }}

),

renamed as (

    select
        -- ids
        batch_run_id,

        -- timestamps
        hour_start,
        hour_start + interval '1 hour' as hour_end,
        closed_at

    from source

)

select * from renamed
