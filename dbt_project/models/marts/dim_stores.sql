with

stores as (

    select * from {{ ref('stg_raw__stores') }}

),

final as (

    select
        stores.store_id,
        stores.store_name,
        stores.city,
        stores.region,
        stores.store_format,
        stores.latitude,
        stores.longitude,
        stores.square_meters,
        stores.opened_date

    from stores

)

select * from final
