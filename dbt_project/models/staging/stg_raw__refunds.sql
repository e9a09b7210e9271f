with

source as (

    select * from {{ source('raw', 'refunds') }}

),

renamed as (

    select
        -- ids
        refund_id,
        event_id,
        transaction_id,
        product_id,

        -- text
        reason,

        -- numerics
        quantity,
        amount as refund_amount,
        schema_version,
        kafka_partition,
        kafka_offset,

        -- timestamps
        event_ts as refunded_at,
        ingested_at,

        -- ingestion order (the serving layer's high-water mark)
        landed_xid

    from source

)

select * from renamed
