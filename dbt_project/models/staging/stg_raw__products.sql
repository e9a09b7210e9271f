with

source as (

    select * from {{ source('raw', 'products') }}

),

renamed as (

    select
        -- ids
        product_id,
        sku,

        -- text
        name as product_name,
        category,
        brand,

        -- numerics
        unit_cost,
        base_price,

        -- timestamps
        loaded_at

    from source

)

select * from renamed
