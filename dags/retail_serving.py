"""Keeps the live views' slice small: builds the incremental facts and daily rollups every few minutes.

**What**: `refresh_live_marts` runs one `dbt run` of `fct_sales`, `fct_refunds` and the daily rollups
(`retail.dbt.SERVING_MODELS`), incrementally: each rebuilds the baskets or days that got raw facts since
its serving horizon and moves the horizon forward. The `*_live` views the dashboard reads compute what
landed since the horizon from raw when queried, so they are exact whenever this runs; running it every
`RETAIL_SERVING_REFRESH_MIN` minutes keeps what they compute small (README "Live serving").

**One writer at a time**: the task is a writer like `retail_batch`'s (the one-slot pool `retail_writers`
and the writer lock `retail.writer_lock`, which `retail dbt` and `retail batch` take too), and each
model's build also takes its own advisory lock. Views, tests and dimensions are left to `retail_batch`.
Idempotent: a rerun with nothing new landed rewrites nothing but the horizons.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from dags.common.batch import writer_task_args
from dags.common.callbacks import on_dag_run_failure, task_defaults
from retail.settings import get_settings

SETTINGS = get_settings()
REFRESH_EVERY = timedelta(minutes=SETTINGS.serving_refresh_min)


@dag(
    schedule=REFRESH_EVERY,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SETTINGS),
    dagrun_timeout=timedelta(minutes=SETTINGS.batch_dagrun_timeout_min),
    on_failure_callback=on_dag_run_failure,
    doc_md=__doc__,
    tags=["retail", "serving"],
)
def retail_serving() -> None:
    @task(**writer_task_args(SETTINGS))
    def refresh_live_marts() -> dict[str, int]:
        """Incremental build of the live views' tables; fails (and retries) when a model fails."""
        from retail.dbt import refresh_serving

        result = refresh_serving(get_settings())
        if not result.success:
            raise RuntimeError(f"serving refresh failed: {result.exception or 'see the dbt log'}")
        return {"models": len(result.result.results)}

    refresh_live_marts()


retail_serving()
