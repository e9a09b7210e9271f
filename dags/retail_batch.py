"""The hourly batch layer: recompute closed hours from the lake, rebuild the marts, check freshness.

**What**: `plan_hours` fixes the run's closing time (its interval end) and logs what closes then:
the last `RETAIL_BATCH_LOOKBACK_HOURS` hours that ended at least `RETAIL_BATCH_CLOSE_DELAY_MIN` minutes
before it and before the stream's landed event time, plus every older hour with late events
(`ops.late_events`) not closed since they came, whatever its age; `recompute_closed_hours` submits
`spark/batch_job.py` with SparkSubmitOperator (connection `RETAIL_BATCH_SPARK_CONN_ID`, the local master
by default), which recomputes the per-product minute metrics of those hours from the lake with the
stream's own SQL (`spark.minute_metrics`) into `batch.product_metrics_minute` and marks them in
`batch.closed_hours`; the dbt project runs as two `dbt build` tasks (Cosmos, one dbt invocation each,
tests right after each node): `build_marts`, every model derived from raw alone, which never waits for
Spark, and `build_serving`, the models reading the batch layer (`dags.common.batch.BATCH_DEPENDENT`),
after the recompute; a failed build names the failed models in its exception and its ops.alerts row;
`source_freshness` runs whatever failed before and alerts on a stale source; `generate_docs` refreshes
the dbt docs the Airflow UI serves (Browse > dbt Docs).

**One writer at a time**: every writing task is in the one-slot pool `retail_writers` and holds the
writer lock (`retail.writer_lock`) that `retail batch`, `retail dbt` and `retail demo` take too. Every
task has an execution timeout and the run a dagrun timeout; a timeout is an alert in ops.alerts. The logic
lives in `spark/batch_job.py`, `spark/hours.py`, `dags/common/batch.py` and `dbt_project/`; this file
only wires it.

**Serving**: `marts.fct_product_metrics_minute` serves batch rows for closed hours (`is_final`) and the
speed layer's rows after them; `marts.rpt_reconciliation` shows where the two differed (late events).

**Idempotent**: the recompute merges (unchanged rows are not touched) and dbt rebuilds the same marts,
so a rerun over the same data leaves identical tables.

**Schedule**: at minute 15 of every hour (an hour closes 10 minutes after it ends by default), without
catchup: each run recomputes the whole lookback anyway. Older ranges: `retail_backfill`.

**Produces** the `marts` Asset (after `build_marts`), which triggers `retail_ml`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import TriggerRule, dag, get_current_context, task

from dags.common.assets import MARTS
from dags.common.batch import raw_and_serving_builds, recompute_operator
from dags.common.callbacks import on_dag_run_failure, task_defaults
from retail.settings import get_settings

SETTINGS = get_settings()


@dag(
    schedule="15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SETTINGS),
    dagrun_timeout=timedelta(minutes=SETTINGS.batch_dagrun_timeout_min),
    on_failure_callback=on_dag_run_failure,
    doc_md=__doc__,
    tags=["retail", "batch", "dbt"],
)
def retail_batch() -> None:
    @task
    def plan_hours() -> dict[str, Any]:
        """The closing time of this run (its interval end, or now for manual runs) and what it closes."""
        from spark import hours

        context = get_current_context()
        as_of = context.get("data_interval_end") or datetime.now(UTC)
        return hours.describe_closing(get_settings(), as_of)

    @task(outlets=[MARTS])
    def publish_marts(*, outlet_events: Any = None) -> None:
        """Announce fresh marts (the `marts` Asset): retail_ml and other consumers run on it."""

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def source_freshness() -> None:
        """`dbt source freshness`, whatever failed before: fails (and alerts) when a source is stale."""
        from retail.dbt import run_dbt

        result = run_dbt(get_settings(), ["source", "freshness"])
        if not result.success:
            raise RuntimeError("dbt source freshness failed: a source is stale; see this task's log")

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def generate_docs() -> None:
        """`dbt docs generate`: the dbt Docs view of the Airflow UI (Cosmos plugin) shows this build."""
        from retail.dbt import run_dbt

        result = run_dbt(get_settings(), ["docs", "generate", "--quiet"])
        if not result.success:
            raise RuntimeError(f"dbt docs generate failed: {result.exception or 'see this task log'}")

    recompute = recompute_operator("recompute_closed_hours", SETTINGS, "plan_hours", closing=True)
    raw_marts, serving = raw_and_serving_builds(SETTINGS)
    plan_hours() >> recompute
    # Raw-derived marts never wait for Spark; the batch-dependent models wait for both.
    [recompute, raw_marts] >> serving
    raw_marts >> publish_marts() >> [source_freshness(), generate_docs()]


retail_batch()
