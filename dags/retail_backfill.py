"""Recompute and rebuild a date range by hand: the batch layer's repair tool.

**What**: recomputes the per-product minute metrics of every closed hour from `start_date` to `end_date`
(UTC days, inclusive) from the lake (`spark/batch_job.py` through SparkSubmitOperator), then rebuilds
every mart with a full refresh of the incremental models (one `dbt build` task, tests after each
model, over every row: `test_lookback: all`). Its writing tasks share the pool `retail_writers` and the writer
lock with `retail_batch` and the CLI, so a backfill started during an hourly run waits for it.
Hours that have not closed yet are left to the speed layer (the range is cut at the last closed hour).

**When**: after events reached the lake later than `retail_batch`'s lookback, after a fix to the
transformation functions or the dbt models, or after restoring the lake. Trigger it from the UI
("Trigger DAG w/ config") or `airflow dags trigger retail_backfill -c '{"start_date": "2026-11-01",
"end_date": "2026-11-07"}'`.

**Idempotent**: rerunning the same range leaves identical tables. **Produces** the `marts` Asset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dags.common.assets import MARTS
from dags.common.batch import dbt_build_operator, recompute_operator
from dags.common.callbacks import on_dag_run_failure, task_defaults
from retail.settings import get_settings

SETTINGS = get_settings()


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SETTINGS),
    dagrun_timeout=timedelta(minutes=SETTINGS.backfill_dagrun_timeout_min),
    on_failure_callback=on_dag_run_failure,
    doc_md=__doc__,
    params={
        "start_date": Param(None, type=["null", "string"], format="date", description="First day (UTC)"),
        "end_date": Param(
            None, type=["null", "string"], format="date", description="Last day (UTC), inclusive"
        ),
    },
    tags=["retail", "batch", "dbt", "backfill"],
)
def retail_backfill() -> None:

    @task
    def plan_range() -> dict[str, str]:
        """The closed hours of the requested days; a bad range fails at once, naming the fix."""
        from airflow.sdk.exceptions import AirflowFailException

        from spark import hours

        params = get_current_context()["params"]
        try:
            return hours.plan_backfill(
                get_settings(), params.get("start_date"), params.get("end_date"), datetime.now(UTC)
            )
        except hours.BadRange as error:
            raise AirflowFailException(str(error)) from error

    @task(outlets=[MARTS])
    def publish_marts(*, outlet_events: Any = None) -> None:
        """Announce rebuilt marts (the `marts` Asset)."""

    recompute = recompute_operator("recompute_range", SETTINGS, plan_task_id="plan_range")
    marts = dbt_build_operator("build_marts", SETTINGS, full_refresh=True)
    plan_range() >> recompute >> marts >> publish_marts()


retail_backfill()
