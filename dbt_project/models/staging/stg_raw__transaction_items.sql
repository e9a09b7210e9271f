with

source as (

    select * from {{ source('raw', 'transaction_items') }}

),

renamed as (

    select
        -- ids
        transaction_id || ':' || line_number::text as sales_line_id,
        transaction_id,
        line_number,
        product_id,
        store_id,

        -- numerics
        quantity,
        unit_price,
        discount as discount_amount,

        -- timestamps
        event_ts as transacted_at,
        ingested_at,

        -- ingestion order (the serving layer's high-water mark)
        landed_xid

    from source

)

select * from renamed
