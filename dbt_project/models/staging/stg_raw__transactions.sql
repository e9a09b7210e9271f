with

source as (

    select * from {{ source('raw', 'transactions') }}

),

renamed as (

    select
        -- ids
        transaction_id,
        event_id,
        store_id,
        customer_id,

        -- text
        channel,
        payment_method,

        -- numerics
        line_count,
        schema_version,
        kafka_partition,
        kafka_offset,

        -- timestamps
        event_ts as transacted_at,
        ingested_at,

        -- ingestion order (the serving layer's high-water mark)
        landed_xid

    from source

)

select * from renamed
