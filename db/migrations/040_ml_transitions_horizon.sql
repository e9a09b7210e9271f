-- Segment transitions over a fixed horizon: the latest succeeded segmentation run against the newest one
-- whose data ends at least 7 days before it (with daily runs, exactly a week apart). Comparing the last
-- two runs showed hour-to-hour noise when ML ran on every hourly marts refresh. Retention
-- (ml.runs.prune_runs) keeps the last RETAIL_ML_KEEP_RUNS runs and the newest of each ISO week, so a
-- run a week back exists. Before a week of runs exists the view is empty.
create or replace view ml.segment_transitions as
with succeeded as (
    select run_id, run_number, data_to
    from ml.model_runs
    where kind = 'segmentation' and status = 'succeeded'
),
latest as (
    select run_id, data_to from succeeded order by run_number desc limit 1
),
horizon as (
    select succeeded.run_id
    from succeeded, latest
    where succeeded.data_to <= latest.data_to - interval '7 days'
    order by succeeded.data_to desc, succeeded.run_number desc
    limit 1
),
previous_run as (
    select segments.customer_id, segments.rfm_segment
    from ml.customer_segments as segments
    join horizon on horizon.run_id = segments.run_id
),
latest_run as (
    select segments.customer_id, segments.rfm_segment
    from ml.customer_segments as segments
    join latest on latest.run_id = segments.run_id
    where exists (select 1 from horizon)
)
select
    coalesce(previous_run.rfm_segment, '(none)') as from_segment,
    coalesce(latest_run.rfm_segment, '(none)') as to_segment,
    count(*) as customers
from previous_run
full join latest_run on latest_run.customer_id = previous_run.customer_id
group by 1, 2;

comment on view ml.segment_transitions is 'Customers per (from_segment, to_segment) between the latest succeeded segmentation run and the newest one at least 7 days of data older (empty until such a run exists).';

grant select on ml.segment_transitions to :analyst;
