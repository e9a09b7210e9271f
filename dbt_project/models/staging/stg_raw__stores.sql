with

source as (

    select * from {{ source('raw', 'stores') }}

),

renamed as (

    select
        -- ids
        store_id,

        -- text
        name as store_name,
        city,
        region,
        format as store_format,

        -- numerics
        latitude,
        longitude,
        square_meters,

        -- dates and timestamps
        opened_on as opened_date,
        loaded_at

    from source

)

select * from renamed
