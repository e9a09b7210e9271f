{% macro live_view(built, key, live_slice, live_rows, per_key=false) %}
    {#- A lambda view (README: "Live serving"): the built table `built` without the rows whose `key`
        (transaction_id or activity_date) is in `live_slice` (the baskets or days that got raw facts
        since the table's serving horizon), plus `live_rows`: those baskets or days computed with the
        table's own definition, reading the slice from the CTE `live_slice`. With `per_key`, `live_rows`
        computes one key (`live_slice.<key>`, a lateral reference) and runs once per key of the slice,
        so a query's filter on the key skips the keys it does not need (a rollup view queried for past
        days does not recompute today). -#}
with

built as (

    select * from {{ built }}

),

live_slice as (

    {{ live_slice }}

),

built_rows as (

    select
        built.*,
        false as is_provisional

    from built
    -- `not exists`, a hashed anti-join: `not in` over a slice estimated large runs as a nested scan.
    where not exists (select 1 from live_slice where live_slice.{{ key }} = built.{{ key }})

),

live_rows as (

    select
        live.*,
        true as is_provisional

    {% if per_key %}
    from live_slice
    cross join lateral ({{ live_rows }}) as live
    {% else %}
    from ({{ live_rows }}) as live
    {% endif %}

),

final as (

    select * from built_rows
    union all
    select * from live_rows

)

select * from final
{% endmacro %}
