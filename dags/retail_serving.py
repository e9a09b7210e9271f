"""Keeps the live views' slice small: builds the incremental facts and daily rollups every few minutes.

**What**: `refresh_live_marts` runs one `dbt run` of `fct_sales`, `fct_refunds` and the daily rollups
(`retail.dbt.SERVING_MODELS`), incrementally: each rebuilds the baskets or days that got raw facts since
its serving horizon and moves the horizon forward. The `*_live` views the dashboard reads compute what
landed since the horizon from raw when queried, so they are exact whenever this runs; running it every
`RETAIL_SERVING_REFRESH_MIN` minutes keeps what they compute small (README "Live serving").

**Safe next to other builds**: each model's build takes its own advisory lock (a refresh and the hourly
`retail_batch` build of one table take turns); views, tests and dimensions are left to `retail_batch`.
Idempotent: a rerun with nothing new landed rewrites nothing but the horizons.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from retail.alerts import DEFAULT_TASK_ARGS
from retail.settings import get_settings

REFRESH_EVERY = timedelta(minutes=get_settings().serving_refresh_min)


@dag(
    schedule=REFRESH_EVERY,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=REFRESH_EVERY * 3,
    default_args={**DEFAULT_TASK_ARGS, "execution_timeout": REFRESH_EVERY * 2},
    doc_md=__doc__,
    tags=["retail", "serving"],
)
def retail_serving() -> None:
    @task
    def refresh_live_marts() -> dict[str, int]:
        """Incremental build of the live views' tables; fails (and retries) when a model fails."""
        from retail.dbt import refresh_serving

        result = refresh_serving(get_settings())
        if not result.success:
            raise RuntimeError(f"serving refresh failed: {result.exception or 'see the dbt log'}")
        return {"models": len(result.result.results)}

    refresh_live_marts()


retail_serving()
