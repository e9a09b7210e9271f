with

source as (

    select * from {{ source('ops', 'late_events') }}

),

renamed as (

    select
        -- ids
        topic,

        -- numerics
        late_events,
        max_lateness,

        -- timestamps
        event_minute,
        updated_at

    from source

)

select * from renamed
