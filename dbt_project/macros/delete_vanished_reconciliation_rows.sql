{% macro delete_vanished_reconciliation_rows() %}
    {#- Pre-hook of rpt_reconciliation (incremental runs): a recompute can find nothing left in a
        window it closed before (the events were repeats, or the lake was fixed), and delete+insert
        replaces only the windows the new build returns rows for, so a (window, product) that neither
        layer holds any more would stay forever with its old batch figures. Deleted here, in the
        build's transaction; windows the speed layer still holds are recomputed by the model. -#}
    {%- if is_incremental() -%}
        delete from {{ this }} as reconciliation
        where reconciliation.has_batch_row
            and not exists (
                select 1
                from {{ ref('stg_batch__product_metrics_minute') }} as batch_metrics
                where batch_metrics.window_start = reconciliation.window_start
                    and batch_metrics.product_id = reconciliation.product_id
            )
            and not exists (
                select 1
                from {{ ref('stg_speed__product_metrics_minute') }} as speed_metrics
                where speed_metrics.window_start = reconciliation.window_start
                    and speed_metrics.product_id = reconciliation.product_id
            )
    {%- endif -%}
{% endmacro %}
