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

**Schedule**: on the `marts` Asset (`retail.assets.MARTS`), which the batch DAG updates after each
`dbt build`; trigger by hand for an ad-hoc run (the CLI equivalent is `retail ml run`).

**Produces** the Assets `ml.customer_segments` and `ml.product_associations` (event extra: the run
summary).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import dag, task

from retail.alerts import DEFAULT_TASK_ARGS
from retail.assets import MARTS, ML_RULES, ML_SEGMENTS

DEFAULT_ARGS = DEFAULT_TASK_ARGS


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
    schedule=[MARTS],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    tags=["retail", "ml"],
)
def retail_ml() -> None:
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

    segment_customers()
    mine_association_rules()


retail_ml()
