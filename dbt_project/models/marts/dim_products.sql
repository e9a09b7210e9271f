{{ config(indexes=[{'columns': ['product_id', 'valid_from']}]) }}

with

snapshot as (

    select * from {{ ref('snap_raw__products') }}

),

-- dbt snapshots record timestamps without time zone, taken in the session's zone: UTC (PGTZ,
-- set by retail/dbt.py).
versions as (

    select
        snapshot.dbt_scd_id as product_version_id,
        snapshot.product_id,
        snapshot.sku,
        snapshot.name as product_name,
        snapshot.category,
        snapshot.brand,
        snapshot.unit_cost,
        snapshot.base_price,
        -- The first version is valid from the beginning of time, so sales made before the first
        -- snapshot ran still find their product.
        case
            when row_number() over (
                partition by snapshot.product_id order by snapshot.dbt_valid_from
            ) = 1
                then '1900-01-01 00:00:00+00'::timestamptz
            else snapshot.dbt_valid_from at time zone 'UTC'
        end as valid_from,
        snapshot.dbt_valid_to at time zone 'UTC' as valid_to,
        snapshot.dbt_valid_to is null as is_current,
        snapshot.dbt_valid_from at time zone 'UTC' as recorded_at

    from snapshot

)

select * from versions
