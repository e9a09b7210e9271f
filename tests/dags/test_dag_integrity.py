"""Every file in `dags/` parses without import errors; every DAG has tags, retries >= 2, timeouts and
failure alerts, and the batch DAGs' writing tasks share the writer pool.

One case per DAG file, so a broken file names itself in the test id. Airflow is imported inside the
tests, after `airflow_env` configured it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from retail.settings import Settings
from stack.airflow import DAGS_FOLDER

pytestmark = pytest.mark.integration

DAG_FILES = sorted(path for path in DAGS_FOLDER.glob("*.py") if not path.name.startswith("_"))


def test_there_are_dag_files() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_FOLDER}"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=[path.name for path in DAG_FILES])
def test_dag_file_imports_cleanly_with_tags_and_retries(airflow_env: Settings, dag_file: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_file))
    assert bag.import_errors == {}
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False, f"{dag_id} must not catch up"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id} records no alert on failure"
            assert task.execution_timeout, f"{dag_id}.{task.task_id} has no execution_timeout"
        assert dag.dagrun_timeout, f"{dag_id} has no dagrun_timeout"
        assert dag.on_failure_callback, f"{dag_id} records no alert when a run fails or times out"


@pytest.mark.parametrize("dag_id", ["retail_batch", "retail_backfill"])
def test_batch_writers_share_the_writer_pool(airflow_env: Settings, dag_id: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from retail.writer_lock import WRITER_POOL

    dag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py")).get_dag(dag_id)
    writers = {task.task_id for task in dag.tasks if task.pool == WRITER_POOL}
    readers = {task.task_id for task in dag.tasks} - writers
    read_only = {"plan_hours", "plan_range", "publish_marts", "source_freshness", "generate_docs"}
    assert readers <= read_only, readers
    assert "build_marts" in writers, writers
