"""Loads the dimension files into `raw.products` and `raw.stores`.

**What**: reads the product catalog (`RETAIL_PRODUCT_CATALOG_CSV`) and the store list
(`RETAIL_STORE_LOCATIONS_CSV`), validates every line (types, required fields, ranges, coordinates, dates,
duplicate keys), upserts the good rows in one transaction and records each rejected line with its line
number and reason in `ops.rejected_rows`. The logic lives in `dimensions/load.py`; these tasks only call it.

**Idempotent**: unchanged rows are not touched (`loaded_at` only moves when a row changed), rejects are
keyed by the file's content hash and line, so a rerun leaves identical tables.

**Fails loudly**: when more than `RETAIL_DIMENSION_MAX_REJECT_SHARE` (default 5 %) of a file's lines are
rejected, or the header is wrong, the task fails without retrying (retries cannot fix a file) and
loads nothing; `ops.rejected_rows` says why and `ops.alerts` gets an alert.

**Schedule**: `@daily`, without catchup. Nothing in the platform announces a new file (the CSVs are dropped
in by hand or by a sync job), so there is no upstream Asset to schedule on; a daily sweep is cheap because
an unchanged file changes no row. After dropping in a new file, trigger the DAG to load it at once
(UI "Trigger", or `airflow dags trigger retail_dimensions`).

**Produces** the Assets `raw.products` and `raw.stores` (event extra: rows read, loaded, changed,
rejected and the load id), which downstream DAGs can schedule on with `Asset.ref(name="raw.products")`.
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
