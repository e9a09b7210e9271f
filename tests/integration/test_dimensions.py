"""Dimension loads and failure alerts against the real embedded PostgreSQL (no Airflow involved).

The loads run in a database of their own (`retail_dimensions_it`, migrated like the platform's), so
emptying tables here cannot disturb other test folders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from dags.common import callbacks as alerts
from dimensions.load import TooManyRejects, load_file, load_products, load_stores
from retail.dimension_files import read_products
from retail.settings import PROJECT_ROOT, Settings, get_settings
from stack import postgres
from stack.airflow import retail_environment

pytestmark = pytest.mark.integration

PRODUCTS_CSV = PROJECT_ROOT / "db" / "data" / "product_catalog.csv"


@pytest.fixture(scope="module")
def dims_settings(platform: Settings) -> Settings:
    settings = platform.model_copy(update={"pg_database": "retail_dimensions_it"})
    postgres.prepare(settings)
    return settings


@pytest.fixture
def db(dims_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dims_settings.admin_dsn, autocommit=True) as conn:
        conn.execute("truncate raw.products, raw.stores, ops.rejected_rows, ops.alerts")
        yield conn


def snapshot(conn: psycopg.Connection, table: str, key: str) -> list[tuple]:
    return conn.execute(f"select * from {table} order by {key}").fetchall()


def test_load_is_complete_and_a_rerun_changes_nothing(
    dims_settings: Settings, db: psycopg.Connection
) -> None:
    products, stores = load_products(dims_settings), load_stores(dims_settings)
    assert (products.rows_read, products.rows_loaded, products.rows_changed, products.rows_rejected) == (
        245, 245, 245, 0,
    )  # fmt: skip
    assert (stores.rows_loaded, stores.rows_changed) == (30, 30)
    before = snapshot(db, "raw.products", "product_id"), snapshot(db, "raw.stores", "store_id")

    again = load_products(dims_settings)
    assert again.rows_changed == 0 and load_stores(dims_settings).rows_changed == 0
    assert (snapshot(db, "raw.products", "product_id"), snapshot(db, "raw.stores", "store_id")) == before


def test_only_changed_rows_move_and_dropped_rows_stay(
    dims_settings: Settings, db: psycopg.Connection, tmp_path: Path
) -> None:
    lines = PRODUCTS_CSV.read_text(encoding="utf-8").splitlines()
    catalog = tmp_path / "product_catalog.csv"
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_file(dims_settings, read_products(catalog))
    loaded_at = dict(db.execute("select product_id, loaded_at from raw.products").fetchall())

    assert lines[1].startswith("P0001,") and lines[2].startswith("P0002,")
    lines[1] = lines[1].rsplit(",", 1)[0] + ",1.59"  # P0001: new price
    del lines[2]  # P0002 no longer listed
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_file(dims_settings, read_products(catalog))

    assert (result.rows_read, result.rows_changed) == (244, 1)
    after = dict(db.execute("select product_id, loaded_at from raw.products").fetchall())
    assert {key for key in after if after[key] != loaded_at[key]} == {"P0001"}
    assert db.execute("select base_price::text from raw.products where product_id = 'P0001'").fetchone() == (
        "1.59",
    )
    # A product missing from the new file is kept: sales history still refers to it.
    assert "P0002" in after


def test_too_many_rejects_load_nothing_but_record_why(
    dims_settings: Settings, db: psycopg.Connection, tmp_path: Path
) -> None:
    bad = tmp_path / "products.csv"
    bad.write_text(
        "product_id,sku,name,category,brand,unit_cost,base_price\n"
        "P1,S1,Fine,C,B,1.00,2.00\n"
        "P2,S2,,C,B,1.00,2.00\n",
        encoding="utf-8",
    )
    with pytest.raises(
        TooManyRejects, match=r"1 of 2 lines rejected \(50% > RETAIL_DIMENSION_MAX_REJECT_SHARE"
    ):
        load_file(dims_settings, read_products(bad))
    assert db.execute("select count(*) from raw.products").fetchone() == (0,)
    assert db.execute("select line_number, reason from ops.rejected_rows").fetchall() == [
        (3, "name is empty")
    ]

    lenient = dims_settings.model_copy(update={"dimension_max_reject_share": 0.5})
    result = load_file(lenient, read_products(bad))
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    assert db.execute("select count(*) from ops.rejected_rows").fetchone() == (1,)  # not recorded twice


def test_failure_callback_records_an_alert(
    dims_settings: Settings, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in retail_environment(dims_settings).items():  # what `retail up` gives Airflow
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    task_instance = SimpleNamespace(
        dag_id="some_dag", task_id="some_task", run_id="r1", try_number=3, map_index=-1
    )
    try:
        alerts.on_task_failure({"ti": task_instance, "exception": ValueError("boom"), "run_id": "r1"})
    finally:
        get_settings.cache_clear()
    [(source, severity, message, context)] = db.execute(
        "select source, severity, message, context from ops.alerts"
    ).fetchall()
    assert (source, severity, message) == (
        "airflow:some_dag.some_task",
        "error",
        "task some_dag.some_task failed: ValueError: boom",
    )
    assert context == {
        "dag_id": "some_dag", "task_id": "some_task", "run_id": "r1", "try_number": 3, "map_index": -1,
        "logical_date": None,
    }  # fmt: skip
