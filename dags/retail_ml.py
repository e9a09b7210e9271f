"""Customer segments (RFM + K-Means) and basket association rules over the dbt marts.

`segment_customers` and `mine_association_rules` only call `ml.jobs`, with the `RETAIL_ML_*` settings.
Each publishes one run atomically: its rows and its `ml.model_runs` row commit together, and the
`ml.*_latest` views read the newest succeeded run. Too little data records a `skipped` run and keeps
the previous one; other errors record a `failed` run, retry, then alert in `ops.alerts`.

Runs daily at `RETAIL_ML_DAILY_CRON` (UTC) or on the `marts` Asset; an Asset-triggered run computes only
when the last succeeded run is older than `RETAIL_ML_MIN_INTERVAL_HOURS` (`check_due`), so hourly marts
refreshes do not retrain hourly. Produces the Assets `ml.customer_segments` and `ml.product_associations`.
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
