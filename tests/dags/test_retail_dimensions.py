"""`dag.test()` runs of retail_dimensions against the embedded PostgreSQL and a real Airflow metadata DB.

The dimension tables live in the `retail_dags` database of `tests/dags/conftest.py`, emptied per test.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retail.settings import PROJECT_ROOT, Settings, get_settings
from tests.checksums import table_checksums

pytestmark = pytest.mark.integration

PRODUCTS_CSV = PROJECT_ROOT / "db" / "data" / "product_catalog.csv"
STORES_CSV = PROJECT_ROOT / "db" / "data" / "store_locations.csv"
TABLES = {
    "raw.products": "product_id",
    "raw.stores": "store_id",
    "ops.rejected_rows": "load_id, line_number",
}


def run_dag() -> Any:
    """One dag.test() run; returns the DagRun (tasks run in this process)."""
    from airflow.dag_processing.dagbag import DagBag

    from stack.airflow import DAGS_FOLDER

    get_settings.cache_clear()  # a test may have pointed RETAIL_* at other files
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_dimensions.py"))
    return bag.get_dag("retail_dimensions").test()


def checksums(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every column (loaded_at and ids included) of each table."""
    return table_checksums(conn, TABLES)


def csv_rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_loads_every_csv_row(airflow_env: Settings, dags_db: psycopg.Connection) -> None:
    dag_run = run_dag()
    assert str(dag_run.state) == "success", task_states(dag_run)
    counts = checksums(dags_db)
    assert counts["raw.products"][0] == csv_rows(PRODUCTS_CSV) == 245
    assert counts["raw.stores"][0] == csv_rows(STORES_CSV) == 30
    assert counts["ops.rejected_rows"][0] == 0
    row = dags_db.execute(
        "select sku, name, unit_cost::text, base_price::text, source_file from raw.products "
        "where product_id = 'P0001'"
    ).fetchone()
    assert row == ("SKU-88506820", "Spaghetti 500g", "0.98", "1.49", "db/data/product_catalog.csv")


def test_rerun_leaves_identical_tables(airflow_env: Settings, dags_db: psycopg.Connection) -> None:
    assert str(run_dag().state) == "success"
    first = checksums(dags_db)
    assert str(run_dag().state) == "success"
    assert checksums(dags_db) == first


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


PRODUCT_HEADER = "product_id,sku,name,category,brand,unit_cost,base_price"
STORE_HEADER = "store_id,name,city,region,latitude,longitude,opened_on,square_meters,format"


def test_bad_rows_are_rejected_with_line_and_reason(
    airflow_env: Settings,
    dags_db: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good_products = [f"PT{n:03},SKU-T{n:03},Product {n},Snacks,Brand,1.00,2.00" for n in range(1, 41)]
    products = write_csv(
        tmp_path / "products.csv",
        PRODUCT_HEADER,
        [
            *good_products,  # lines 2-41
            "PB01,SKU-B01,Bad Price,Snacks,Brand,1.00,abc",  # line 42
            "PB02,SKU-B02,,Snacks,Brand,1.00,2.00",  # line 43: missing name
        ],
    )
    good_stores = [f"ST{n:02},Store {n},City,West,40.0,-70.0,2020-01-01,100,express" for n in range(1, 40)]
    stores = write_csv(
        tmp_path / "stores.csv",
        STORE_HEADER,
        [
            *good_stores,  # lines 2-40
            "SB1,Dup A,City,West,40.0,-70.0,2020-01-01,100,express",  # line 41: duplicate key
            "SB1,Dup B,City,West,40.0,-70.0,2020-01-01,100,express",  # line 42: duplicate key
            "SB2,Bad Date,City,West,40.0,-70.0,2020-13-45,100,express",  # line 43
            "SB3,Far North,City,West,95.5,-70.0,2020-01-01,100,express",  # line 44
            "SB4,Short Row,City,West,40.0,-70.0,2020-01-01,100",  # line 45: 8 columns
        ],
    )
    monkeypatch.setenv("RETAIL_PRODUCT_CATALOG_CSV", str(products))
    monkeypatch.setenv("RETAIL_STORE_LOCATIONS_CSV", str(stores))
    monkeypatch.setenv("RETAIL_DIMENSION_MAX_REJECT_SHARE", "0.2")

    dag_run = run_dag()
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert dags_db.execute("select count(*) from raw.products").fetchone() == (40,)
    assert dags_db.execute("select count(*) from raw.stores").fetchone() == (39,)
    rejects = dags_db.execute(
        "select source_file, line_number, reason from ops.rejected_rows order by source_file, line_number"
    ).fetchall()
    assert [(Path(source).name, line) for source, line, _ in rejects] == [
        ("products.csv", 42),
        ("products.csv", 43),
        ("stores.csv", 41),
        ("stores.csv", 42),
        ("stores.csv", 43),
        ("stores.csv", 44),
        ("stores.csv", 45),
    ]
    reasons = [reason for _, _, reason in rejects]
    assert reasons[0] == "base_price 'abc' is not a number"
    assert reasons[1] == "name is empty"
    assert reasons[2] == reasons[3] == "duplicate store_id SB1 (lines 41, 42)"
    assert reasons[4] == "opened_on '2020-13-45' is not a date (YYYY-MM-DD)"
    assert reasons[5] == "latitude 95.5 is outside [-90, 90]"
    assert reasons[6] == "expected 9 columns, found 8"

    before = checksums(dags_db)
    assert str(run_dag().state) == "success"
    assert checksums(dags_db) == before  # rejects are not recorded twice


def test_too_many_rejects_fail_the_task_and_raise_an_alert(
    airflow_env: Settings,
    dags_db: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    products = write_csv(
        tmp_path / "products.csv",
        PRODUCT_HEADER,
        [
            "PG01,SKU-G01,Fine,Snacks,Brand,1.00,2.00",
            "PB01,SKU-B01,Negative,Snacks,Brand,-1.00,2.00",
            "PB02,SKU-B02,Bad Cost,Snacks,Brand,one,2.00",
        ],
    )
    monkeypatch.setenv("RETAIL_PRODUCT_CATALOG_CSV", str(products))

    dag_run = run_dag()
    assert str(dag_run.state) == "failed"
    states = task_states(dag_run)
    assert states == {"load_products": "failed", "load_stores": "success"}
    # Nothing loaded from the bad file, but the reasons are recorded.
    assert dags_db.execute("select count(*) from raw.products").fetchone() == (0,)
    assert dags_db.execute("select count(*) from ops.rejected_rows").fetchone() == (2,)
    [(source, severity, message, context)] = dags_db.execute(
        "select source, severity, message, context from ops.alerts where source like %s", ("%.load_products",)
    ).fetchall()
    assert (source, severity) == ("airflow:retail_dimensions.load_products", "error")
    # The failed run is an alert of its own (dags.common.callbacks.on_dag_run_failure).
    assert dags_db.execute(
        "select count(*) from ops.alerts where source = 'airflow:retail_dimensions'"
    ).fetchone() == (1,)
    assert "2 of 3 lines rejected" in message and "RETAIL_DIMENSION_MAX_REJECT_SHARE" in message
    assert context["dag_id"] == "retail_dimensions" and context["run_id"] == dag_run.run_id
