"""The DAG task callbacks record each task's outcome in ops.task_runs, which ops.dag_runs rolls up per DAG
run for the dashboard (the analyst login cannot read Airflow's metadata database)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
import pytest

from dags.common import callbacks as alerts
from retail.settings import Settings, get_settings
from stack import postgres
from stack.airflow import retail_environment

pytestmark = pytest.mark.integration


@pytest.fixture
def runs_settings(platform: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    settings = platform.model_copy(update={"pg_database": "retail_dash_runs"})
    postgres.prepare(settings)
    for name, value in retail_environment(settings).items():  # what `retail up` gives Airflow's tasks
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def task(task_id: str, try_number: int = 1, run_id: str = "manual__1") -> SimpleNamespace:
    started = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    return SimpleNamespace(
        dag_id="retail_ml",
        task_id=task_id,
        run_id=run_id,
        try_number=try_number,
        map_index=-1,
        start_date=started,
        end_date=started.replace(minute=1),
    )


def test_callbacks_record_outcomes_that_roll_up_per_dag_run(runs_settings: Settings) -> None:
    alerts.on_task_success({"ti": task("segment_customers"), "run_id": "manual__1"})
    alerts.on_task_failure({"ti": task("mine_rules", 3), "exception": MemoryError(), "run_id": "manual__1"})
    with psycopg.connect(runs_settings.analyst_dsn) as conn:
        run = conn.execute(
            "select dag_id, run_id, state, tasks_succeeded, tasks_failed, started_at, finished_at"
            " from ops.dag_runs where run_id = 'manual__1'"
        ).fetchall()
        alert = conn.execute("select source from ops.alerts where message like '%MemoryError%'").fetchall()
    assert run == [
        (
            "retail_ml",
            "manual__1",
            "failed",
            1,
            1,
            datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            datetime(2026, 11, 24, 10, 1, tzinfo=UTC),
        )
    ]
    assert alert == [("airflow:retail_ml.mine_rules",)]


def test_a_retried_task_replaces_its_outcome(runs_settings: Settings) -> None:
    first, rerun = task("load_products", 3, "manual__2"), task("load_products", 4, "manual__2")
    alerts.on_task_failure({"ti": first, "exception": OSError(), "run_id": "manual__2"})
    alerts.on_task_success({"ti": rerun, "run_id": "manual__2"})  # cleared and run again
    with psycopg.connect(runs_settings.writer_dsn) as conn:
        rows = conn.execute(
            "select try_number, state from ops.task_runs where task_id = 'load_products'"
        ).fetchall()
    assert rows == [(4, "success")]
