"""`dag.test()` runs of retail_ml over producer-built marts: both tasks succeed, twice, identically.

The marts come from `tests/ml/producer_data.py` (simulator in-process, COPY into raw, `dbt build`), in the
`retail_ml_it` database shared with tests/ml (built once per session); the tasks' settings point there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from retail.settings import Settings, get_settings
from tests.ml.producer_data import marts_database

pytestmark = pytest.mark.integration

OUTPUTS = {
    "segmentation": ("ml.customer_segments", "customer_id"),
    "association_rules": ("ml.product_associations", "rule_rank"),
}


@pytest.fixture
def ml_dag_settings(
    airflow_env: Settings, platform: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    settings, _ = marts_database(platform, "retail_ml_it")
    monkeypatch.setenv("RETAIL_PG_DATABASE", settings.pg_database)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def run_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from stack.airflow import DAGS_FOLDER

    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_ml.py"))
    assert bag.import_errors == {}
    return bag.get_dag("retail_ml").test()


def latest_outputs(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """The latest succeeded run's rows of each kind, every column but run_id."""
    result = {}
    for kind, (table, order) in OUTPUTS.items():
        schema, name = table.split(".")
        columns = [
            column
            for (column,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = %s and column_name <> 'run_id' order by ordinal_position",
                (schema, name),
            ).fetchall()
        ]
        result[kind] = conn.execute(
            f"select {', '.join(columns)} from {table}"
            f" where run_id = (select run_id from ml.latest_runs where kind = %s) order by {order}",
            (kind,),
        ).fetchall()
    return result


def test_dag_is_scheduled_daily_and_on_the_marts_asset(airflow_env: Settings) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from dags.common.assets import MARTS
    from stack.airflow import DAGS_FOLDER

    dag = DagBag(dag_folder=str(DAGS_FOLDER / "retail_ml.py")).get_dag("retail_ml")
    assert MARTS.name == "marts"
    tasks = {task.task_id for task in dag.tasks}
    assert tasks == {"check_due", "segment_customers", "mine_association_rules"}
    assert "marts" in repr(dag.timetable.asset_condition)
    # Daily as well as on the Asset (AssetOrTimeSchedule), and Asset-triggered runs are gated by check_due.
    assert "CronTriggerTimetable" in type(dag.timetable.timetable).__name__
    assert dag.get_task("segment_customers").upstream_task_ids == {"check_due"}


def test_two_runs_publish_identical_outputs(ml_dag_settings: Settings) -> None:
    with psycopg.connect(ml_dag_settings.writer_dsn, autocommit=True) as conn:
        first_run = run_dag()
        states = {ti.task_id: str(ti.state) for ti in first_run.get_task_instances()}
        assert str(first_run.state) == "success", states
        first = latest_outputs(conn)
        ids = conn.execute("select kind, run_id from ml.latest_runs").fetchall()
        second_run = run_dag()
        assert str(second_run.state) == "success"
        second = latest_outputs(conn)
        assert conn.execute("select kind, run_id from ml.latest_runs").fetchall() != ids
    assert first["segmentation"] and first["association_rules"]
    assert first == second
