{#- The serving layer's high-water marks (README: "Live serving"). A built fact table or rollup has
    a horizon in ops.serving_horizons: every raw row landed by a transaction id below it is reflected
    in the table. Incremental builds rebuild what landed from their previous horizon on; the *_live
    views compute what landed from the current horizon on. -#}

{% macro serving_horizon(relation_name) -%}
    {#- The horizon, read when the query runs: the live views' mark. A relation never built has
        horizon 0 (everything is live). Through ops.serving_horizon(), a stable function, rather than a
        subquery: the planner evaluates it while planning and estimates the slice from landed_xid's
        statistics and index (a subquery's value is unknown then: a guess far off either way picks
        nested loops or full scans that cost seconds). -#}
    ops.serving_horizon('{{ relation_name }}')
{%- endmacro %}

{% macro built_horizon() -%}
    {#- The horizon of the incremental model `this` as a literal, read before its query runs (Postgres
        plans with a constant). Rows landed from it on are the ones this build must take in. -#}
    {%- if execute and is_incremental() -%}
        {%- set query -%}
            select ops.serving_horizon('{{ this.identifier }}')
        {%- endset -%}
        {{ run_query(query).columns[0].values()[0] }}
    {%- else -%}
        0
    {%- endif -%}
{%- endmacro %}

{% macro record_serving_horizon(upstream=[]) -%}
    {#- Pre-hook of a horizon-tracked model, run in the transaction that writes the model: the oldest
        transaction still running now is the new horizon (every lower id has committed, so the
        model's query, which starts later, sees its rows), never beyond the horizons of the built
        tables the model reads. Committed with the model's rows, so a reader sees both or neither.
        The advisory lock makes concurrent builds of one model (an hourly run and a refresh, a CLI
        build) take turns: the second waits, then rebuilds from what the first committed. -#}
    select pg_advisory_xact_lock(hashtext('retail.marts.{{ this.identifier }}'));
    insert into ops.serving_horizons as horizons (relation_name, built_through_xid, built_at)
    select '{{ this.identifier }}',
           least(
               pg_snapshot_xmin(pg_current_snapshot())::text::bigint
               {%- for name in upstream %},
               {{ serving_horizon(name) }}
               {%- endfor %}
           ),
           now()
    on conflict (relation_name) do update
        set built_through_xid = excluded.built_through_xid, built_at = excluded.built_at
{%- endmacro %}
