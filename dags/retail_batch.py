"""The hourly batch layer: recompute closed hours from the lake, rebuild the marts, check freshness.

**What**: `plan_hours` picks the last `RETAIL_BATCH_LOOKBACK_HOURS` hours that ended at least
`RETAIL_BATCH_CLOSE_DELAY_MIN` minutes before the run's interval end; `recompute_closed_hours` submits
`spark/batch_job.py` with SparkSubmitOperator (connection `RETAIL_BATCH_SPARK_CONN_ID`, the local master
by default), which recomputes the per-product minute metrics of those hours from the lake with the
stream's own transformation functions into `batch.product_metrics_minute` and marks them in
`batch.closed_hours`; the `marts` task group is the dbt project through Cosmos (one task per model or
snapshot, its tests right after it); `source_freshness` runs `dbt source freshness` last. The logic
lives in `spark/batch_job.py`, `retail/batch.py` and `dbt_project/`; this file only wires it.

**Serving**: `marts.fct_product_metrics_minute` serves batch rows for closed hours (`is_final`) and the
speed layer's rows after them; `marts.rpt_reconciliation` shows where the two differed (late events).

**Idempotent**: the recompute merges (unchanged rows are not touched) and dbt rebuilds the same marts,
so a rerun over the same data leaves identical tables.

**Schedule**: at minute 15 of every hour (an hour closes 10 minutes after it ends by default), without
catchup: each run recomputes the whole lookback anyway. Older ranges: `retail_backfill`.

**Produces** the `marts` Asset (after the dbt task group), which triggers `retail_ml`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import dag, get_current_context, task

from retail.alerts import DEFAULT_TASK_ARGS
from retail.assets import MARTS
from retail.batch import marts_task_group, recompute_operator
from retail.settings import get_settings

DEFAULT_ARGS = DEFAULT_TASK_ARGS


@dag(
    schedule="15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["retail", "batch", "dbt"],
)
def retail_batch() -> None:
    settings = get_settings()

    @task
    def plan_hours() -> dict[str, str]:
        """The closed hours this run recomputes (as of the run's interval end, or now for manual runs)."""
        from retail import batch

        context = get_current_context()
        as_of = context.get("data_interval_end") or datetime.now(UTC)
        return batch.plan_hours(get_settings(), as_of)

    @task(outlets=[MARTS])
    def publish_marts(*, outlet_events: Any = None) -> None:
        """Announce fresh marts (the `marts` Asset): retail_ml and other consumers run on it."""

    @task
    def source_freshness() -> None:
        """`dbt source freshness`: fails (and alerts) when a raw or layer table stopped being loaded."""
        from retail.dbt import run_dbt

        result = run_dbt(get_settings(), ["source", "freshness"])
        if not result.success:
            raise RuntimeError("dbt source freshness failed: a source is stale; see this task's log")

    plan = plan_hours()
    recompute = recompute_operator("recompute_closed_hours", settings, plan_task_id="plan_hours")
    marts = marts_task_group("marts", settings)
    plan >> recompute >> marts >> publish_marts() >> source_freshness()


retail_batch()
