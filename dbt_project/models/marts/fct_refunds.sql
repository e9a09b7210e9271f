{{
    config(
        materialized='incremental',
        unique_key='refund_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        full_refresh=false,
        pre_hook="{{ record_serving_horizon() }}",
        indexes=[
            {'columns': ['refunded_at']},
            {'columns': ['last_ingested_at']},
        ],
    )
}}

-- full_refresh=false: never dropped and rebuilt (that would drop its *_live view with it); the
-- serving horizon keeps it exact incrementally. Rebuild from scratch by dropping the table.
-- Incremental like fct_sales: every refund of a basket that changed since this table's serving
-- horizon is rebuilt, so a basket landing after its refund fills in the refund's store and customer.
-- fct_refunds_live adds what landed since.
-- depends_on: {{ ref('stg_raw__transaction_items') }}
-- depends_on: {{ ref('stg_raw__transactions') }}
-- depends_on: {{ ref('stg_raw__refunds') }}

{% if is_incremental() %}
{{ refund_rows(changed_transactions(built_horizon())) }}
{% else %}
{{ refund_rows() }}
{% endif %}
