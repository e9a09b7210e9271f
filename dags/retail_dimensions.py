"""Loads the dimension files into `raw.products` and `raw.stores`.

`load_products` and `load_stores` only call `dimensions.load`: every line validated, good rows upserted
in one transaction (unchanged rows untouched), each rejected line recorded with its reason in
`ops.rejected_rows`; a rerun leaves identical tables. A file with more than
`RETAIL_DIMENSION_MAX_REJECT_SHARE` rejected (or a wrong header) loads nothing and fails without a retry
(a retry cannot fix a file). Daily, as nothing announces a new file: trigger the DAG after dropping one
in. Produces the Assets `raw.products` and `raw.stores`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, dag, task

from dags.common.callbacks import on_dag_run_failure, task_defaults
from retail.settings import get_settings

PRODUCTS = Asset(name="raw.products", uri="postgres://retail/retail/raw/products")
STORES = Asset(name="raw.stores", uri="postgres://retail/retail/raw/stores")

SETTINGS = get_settings()


def _load(table: str) -> dict[str, Any]:
    """Run one load; a bad file becomes AirflowFailException (no retries: rerunning cannot fix data)."""
    from airflow.sdk.exceptions import AirflowFailException

    from dimensions import load as dimensions
    from retail.settings import get_settings

    loader = {"products": dimensions.load_products, "stores": dimensions.load_stores}[table]
    try:
        return loader(get_settings()).as_dict()
    except (dimensions.TooManyRejects, dimensions.DimensionFileError) as error:
        raise AirflowFailException(str(error)) from error


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SETTINGS),
    dagrun_timeout=timedelta(minutes=SETTINGS.batch_dagrun_timeout_min),
    on_failure_callback=on_dag_run_failure,
    doc_md=__doc__,
    tags=["retail", "batch", "dimensions"],
)
def retail_dimensions() -> None:
    @task(outlets=[PRODUCTS])
    def load_products(*, outlet_events: Any = None) -> dict[str, Any]:
        """Validate and upsert the product catalog into raw.products."""
        summary = _load("products")
        outlet_events[PRODUCTS].extra = summary
        return summary

    @task(outlets=[STORES])
    def load_stores(*, outlet_events: Any = None) -> dict[str, Any]:
        """Validate and upsert the store list into raw.stores."""
        summary = _load("stores")
        outlet_events[STORES].extra = summary
        return summary

    load_products()
    load_stores()


retail_dimensions()
