-- ML outputs (ml/): run bookkeeping, customer segments, association rules, and the views readers use.
-- Visibility is atomic: a run's rows and its ml.model_runs row (status 'succeeded') are committed in one
-- transaction, and every *_latest view selects the newest succeeded run, so readers never see half a run.

create table if not exists ml.model_runs (
    run_id            uuid primary key,
    -- Completion order of runs; "latest" means the highest run_number among succeeded runs of a kind.
    run_number        bigint generated always as identity unique,
    kind              text not null check (kind in ('segmentation', 'association_rules')),
    status            text not null check (status in ('succeeded', 'skipped', 'failed')),
    reason            text,
    parameters        jsonb not null default '{}',
    -- Data window: the earliest and latest event time read; analysis_time = data_to for segmentation.
    data_from         timestamptz,
    data_to           timestamptz,
    row_counts        jsonb not null default '{}',
    silhouette_scores jsonb,
    chosen_k          integer,
    rule_count        integer,
    started_at        timestamptz not null,
    finished_at       timestamptz not null,
    duration_s        double precision not null
);
create index if not exists model_runs_latest_idx on ml.model_runs (kind, status, run_number desc);

create table if not exists ml.customer_segments (
    run_id           uuid not null references ml.model_runs (run_id) on delete cascade,
    customer_id      text not null,
    last_purchase_at timestamptz not null,
    recency_hours    integer not null check (recency_hours >= 0),
    frequency        integer not null check (frequency > 0),
    monetary         numeric(18, 2) not null,
    r_score          smallint not null check (r_score between 1 and 5),
    f_score          smallint not null check (f_score between 1 and 5),
    m_score          smallint not null check (m_score between 1 and 5),
    rfm_score        text not null,
    rfm_segment      text not null,
    cluster          smallint not null check (cluster >= 1),
    cluster_label    text not null,
    primary key (run_id, customer_id)
);

create table if not exists ml.product_associations (
    run_id            uuid not null references ml.model_runs (run_id) on delete cascade,
    rule_rank         integer not null check (rule_rank >= 1),
    antecedents       text[] not null,
    consequents       text[] not null,
    antecedent_names  text[] not null,
    consequent_names  text[] not null,
    baskets           integer not null check (baskets > 0),
    support           double precision not null,
    confidence        double precision not null,
    lift              double precision not null check (lift > 1),
    leverage          double precision not null,
    -- 'Infinity' when confidence = 1.
    conviction        double precision not null,
    score             double precision not null,
    primary key (run_id, rule_rank)
);
create index if not exists product_associations_antecedents_idx
    on ml.product_associations using gin (antecedents);

create or replace view ml.latest_runs as
select distinct on (kind) *
from ml.model_runs
where status = 'succeeded'
order by kind, run_number desc;

create or replace view ml.customer_segments_latest as
select segments.*
from ml.customer_segments as segments
where segments.run_id = (select run_id from ml.latest_runs where kind = 'segmentation');

-- Customers moving between RFM segments from the previous succeeded run to the latest one. A customer
-- in only one of the two runs moves from or to '(none)'.
create or replace view ml.segment_transitions as
with ranked as (
    select run_id, row_number() over (order by run_number desc) as position
    from ml.model_runs
    where kind = 'segmentation' and status = 'succeeded'
),
previous_run as (
    select segments.customer_id, segments.rfm_segment
    from ml.customer_segments as segments
    join ranked on ranked.run_id = segments.run_id and ranked.position = 2
),
latest_run as (
    select segments.customer_id, segments.rfm_segment
    from ml.customer_segments as segments
    join ranked on ranked.run_id = segments.run_id and ranked.position = 1
)
select
    coalesce(previous_run.rfm_segment, '(none)') as from_segment,
    coalesce(latest_run.rfm_segment, '(none)') as to_segment,
    count(*) as customers
from previous_run
full join latest_run on latest_run.customer_id = previous_run.customer_id
group by 1, 2;

create or replace view ml.product_associations_latest as
select rules.*
from ml.product_associations as rules
where rules.run_id = (select run_id from ml.latest_runs where kind = 'association_rules');

-- "Customers who bought these products also buy ...": consequents of the latest run's rules whose
-- antecedents all lie in the basket, not already in it, best rule per product, ranked by lift x confidence.
create or replace function ml.also_bought(basket text[], max_results integer default 10)
returns table (
    product_id   text,
    product_name text,
    score        double precision,
    lift         double precision,
    confidence   double precision,
    support      double precision,
    because_of   text[]
)
language sql stable
as $$
    with candidates as (
        select
            consequent.product_id,
            consequent.product_name,
            rules.score,
            rules.lift,
            rules.confidence,
            rules.support,
            rules.antecedents,
            rules.rule_rank
        from ml.product_associations_latest as rules
        cross join lateral unnest(rules.consequents, rules.consequent_names)
            as consequent (product_id, product_name)
        where rules.antecedents <@ basket
          and not consequent.product_id = any (basket)
    ),
    best as (
        select distinct on (candidates.product_id) *
        from candidates
        order by candidates.product_id, candidates.score desc, candidates.rule_rank
    )
    select best.product_id, best.product_name, best.score, best.lift, best.confidence, best.support,
           best.antecedents
    from best
    order by best.score desc, best.product_id
    limit max_results
$$;

-- The same for one product, every product at once: the dashboard's "customers who bought X also buy".
create or replace view ml.product_recommendations as
with pairs as (
    select
        rules.antecedents[1] as product_id,
        rules.antecedent_names[1] as product_name,
        consequent.product_id as recommended_product_id,
        consequent.product_name as recommended_product_name,
        rules.score,
        rules.lift,
        rules.confidence,
        rules.support,
        rules.rule_rank
    from ml.product_associations_latest as rules
    cross join lateral unnest(rules.consequents, rules.consequent_names)
        as consequent (product_id, product_name)
    where cardinality(rules.antecedents) = 1
),
best as (
    select distinct on (pairs.product_id, pairs.recommended_product_id) *
    from pairs
    order by pairs.product_id, pairs.recommended_product_id, pairs.score desc, pairs.rule_rank
)
select
    best.product_id,
    best.product_name,
    row_number() over (partition by best.product_id order by best.score desc, best.recommended_product_id)
        as recommendation_rank,
    best.recommended_product_id,
    best.recommended_product_name,
    best.score,
    best.lift,
    best.confidence,
    best.support
from best;

comment on table ml.model_runs is 'One row per ML run (segmentation, association_rules): parameters, data window, counts, scores, status.';
comment on table ml.customer_segments is 'RFM values, quintile scores, RFM segment and K-Means cluster per customer and run.';
comment on table ml.product_associations is 'Association rules (lift > 1) per run, ranked by lift x confidence (score).';
comment on view ml.customer_segments_latest is 'Segments of the latest succeeded segmentation run.';
comment on view ml.segment_transitions is 'Customers per (from_segment, to_segment) between the last two succeeded segmentation runs.';
comment on view ml.product_recommendations is 'Customers who bought product_id also buy recommended_product_id (latest rules, single-product antecedents).';

grant select on all tables in schema ml to :analyst;
grant execute on function ml.also_bought(text[], integer) to :analyst;
