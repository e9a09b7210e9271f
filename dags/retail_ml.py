"""Customer segmentation (RFM + K-Means) and market-basket association rules over the dbt marts.

**What**: `segment_customers` computes RFM per customer from `marts.fct_sales` (net of refunds), scores
and names the RFM segments and clusters customers with K-Means (k chosen by silhouette);
`mine_association_rules` finds frequent itemsets over baskets (FP-Growth by default) and keeps the rules
with lift > 1. The logic lives in `ml/` (`ml.jobs`); these tasks only call it. Parameters are the
`RETAIL_ML_*` settings.

**Atomic and idempotent**: each task publishes one run: its rows (keyed by run_id) and its succeeded row
in `ml.model_runs` commit in one transaction, and the `ml.*_latest` views read the newest succeeded run.
Rerunning over the same marts publishes a new run with identical rows (only run_id and timestamps differ).

**Too little data** (no customers, fewer than two baskets, identical customers) records a `skipped` run
with the reason and skips the task; the previous run stays visible. Other errors record a `failed` run,
retry, and raise an alert in `ops.alerts` after the last try.

**Schedule**: daily, at `RETAIL_ML_DAILY_CRON` (UTC) or on the `marts` Asset (`AssetOrTimeSchedule`):
the daily time guarantees a fresh model every day; an Asset-triggered run (the hourly batch announces
`marts`) computes only when the last succeeded run is older than `RETAIL_ML_MIN_INTERVAL_HOURS`
(`check_due` skips it otherwise), so hourly refreshes do not retrain hourly. Manual runs always
compute (the CLI equivalent is `retail ml run`). Old runs are pruned after each publish (`ml.runs`).

**Produces** the Assets `ml.customer_segments` and `ml.product_associations` (event extra: the run
summary).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, dag, task
from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

from dags.common.assets import MARTS, ML_RULES, ML_SEGMENTS
from dags.common.callbacks import on_dag_run_failure, task_defaults
from retail.settings import get_settings

SETTINGS = get_settings()


def _run(kind: str) -> dict[str, Any]:
    """Run one ML job; a skipped run (too little data) becomes a skipped task with the reason."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ml import jobs
    from retail.settings import get_settings

    job = {"segmentation": jobs.run_segmentation, "association_rules": jobs.run_association_rules}[kind]
    record = job(get_settings())
    if record.status == "skipped":
        raise AirflowSkipException(f"{kind} skipped: {record.reason}")
    return record.summary()


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SETTINGS.ml_daily_cron, timezone="UTC"), assets=[MARTS]
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SETTINGS),
    dagrun_timeout=timedelta(minutes=SETTINGS.batch_dagrun_timeout_min),
    on_failure_callback=on_dag_run_failure,
    doc_md=__doc__,
    tags=["retail", "ml"],
)
def retail_ml() -> None:
    @task.short_circuit
    def check_due(*, dag_run: Any = None) -> bool:
        """Asset-triggered runs compute only when the last succeeded run is old enough (daily cadence)."""
        from ml.runs import due

        return str(getattr(dag_run, "run_type", "")) != "asset_triggered" or due(
            get_settings(), datetime.now(UTC)
        )

    @task(outlets=[ML_SEGMENTS])
    def segment_customers(*, outlet_events: Any = None) -> dict[str, Any]:
        """RFM + K-Means over every loyalty customer; publishes ml.customer_segments."""
        summary = _run("segmentation")
        outlet_events[ML_SEGMENTS].extra = summary
        return summary

    @task(outlets=[ML_RULES])
    def mine_association_rules(*, outlet_events: Any = None) -> dict[str, Any]:
        """Frequent itemsets and rules over baskets; publishes ml.product_associations."""
        summary = _run("association_rules")
        outlet_events[ML_RULES].extra = summary
        return summary

    check_due() >> [segment_customers(), mine_association_rules()]


retail_ml()
