"""The batch DAGs' building blocks: which hours to recompute, the Spark submission and the dbt task group.

`retail_batch` (hourly) and `retail_backfill` (manual, a date range) differ only in the hours they
recompute and in whether dbt fully refreshes the incremental models; both DAG files call these.
Only the DAG files import this module's Airflow parts (operators and Cosmos are imported lazily, so
`plan_hours` can be unit-tested without Airflow).
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retail.dbt import DBT_PROJECT_DIR, manifest_path
from retail.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from cosmos import DbtTaskGroup

BATCH_JOB = PROJECT_ROOT / "spark" / "batch_job.py"
VENV_BIN = Path(sys.executable).parent


class BadRange(ValueError):
    """A backfill range that cannot be recomputed (the message says how to fix it)."""


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def closing_cutoff(settings: Settings, as_of: datetime) -> datetime:
    """The end of the latest hour that is closed at `as_of` (it ended at least the close delay ago)."""
    return _floor_hour(as_of.astimezone(UTC) - timedelta(minutes=settings.batch_close_delay_min))


def plan_hours(settings: Settings, as_of: datetime) -> dict[str, str]:
    """The hourly run's range: the lookback hours closed at `as_of`, as batch_job arguments."""
    end = closing_cutoff(settings, as_of)
    start = end - timedelta(hours=settings.batch_lookback_hours)
    return {"start": start.isoformat(), "end": end.isoformat()}


def plan_backfill(
    settings: Settings, first: date | str | None, last: date | str | None, as_of: datetime
) -> dict[str, str]:
    """A backfill's range: whole days `first`..`last` (UTC), cut at the hours closed at `as_of`."""
    if not first or not last:
        raise BadRange("set both start_date and end_date (YYYY-MM-DD) in the run's config")
    try:
        first_day = first if isinstance(first, date) else date.fromisoformat(first)
        last_day = last if isinstance(last, date) else date.fromisoformat(last)
    except ValueError as error:
        raise BadRange(f"{error}; give start_date and end_date as YYYY-MM-DD") from error
    if last_day < first_day:
        raise BadRange(f"end_date {last_day} is before start_date {first_day}; swap them")
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    end = min(
        datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
        closing_cutoff(settings, as_of),
    )
    if end <= start:
        raise BadRange(
            f"no closed hour from {first_day} on yet (hours close {settings.batch_close_delay_min} min after "
            "they end); pick an earlier start_date"
        )
    return {"start": start.isoformat(), "end": end.isoformat()}


def spark_submit_env(settings: Settings) -> dict[str, str]:
    """What spark-submit needs from this platform: its Java and this venv's Python (spark-submit itself
    is found on PATH, which `retail.stack.airflow` starts with this venv's bin folder)."""
    from retail.java import spark_java_home

    return {
        "JAVA_HOME": str(spark_java_home(settings)),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def recompute_operator(task_id: str, settings: Settings, plan_task_id: str, **kwargs: Any) -> Any:
    """A SparkSubmitOperator running spark/batch_job.py over the hours the plan task returned."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    class BatchJobSubmitOperator(SparkSubmitOperator):
        """Resolves Java and PATH when the task runs, on the worker, not when the DAG file is parsed."""

        def execute(self, context: Any) -> None:
            from retail.settings import get_settings

            self.env_vars = {**spark_submit_env(get_settings()), **(self.env_vars or {})}
            super().execute(context)

    def planned(key: str) -> str:
        return f"{{{{ ti.xcom_pull(task_ids='{plan_task_id}')['{key}'] }}}}"

    return BatchJobSubmitOperator(
        task_id=task_id,
        application=str(BATCH_JOB),
        conn_id=settings.batch_spark_conn_id,
        name="retail-batch-recompute",
        application_args=["--start", planned("start"), "--end", planned("end"), "--run-id", "{{ run_id }}"],
        conf={"spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions)},
        driver_memory="2g",
        **kwargs,
    )


def marts_task_group(group_id: str, settings: Settings, *, full_refresh: bool = False) -> DbtTaskGroup:
    """The dbt project as Airflow tasks (Cosmos): one per model and snapshot, its tests right after it.

    The profile comes from the `retail_postgres` connection (`retail.stack.airflow.connections`), so no
    credential is written into the DAG. The graph is read from the manifest `retail up` keeps current
    (`retail.dbt.ensure_manifest`); without one, Cosmos falls back to `dbt ls` (slow, then cached).
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    from retail.stack.airflow import POSTGRES_CONN_ID

    env = {
        # Sessions in UTC (dbt snapshots stamp zone-less times), the grants' role, no phoning home.
        "PGTZ": "UTC",
        "RETAIL_DBT_ANALYST_ROLE": settings.pg_analyst_user,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }
    operator_args: dict[str, Any] = {"full_refresh": True} if full_refresh else {}
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            DBT_PROJECT_DIR,
            manifest_path=manifest_path(settings),
            env_vars=env,
            install_dbt_deps=False,
        ),
        profile_config=ProfileConfig(
            profile_name="retail",
            target_name="default",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=POSTGRES_CONN_ID, profile_args={"schema": "marts", "threads": 2}
            ),
        ),
        # dbt runs in the task's own process (dbtRunner), from this venv: no executable path to find.
        # A model's test task runs only the tests on that model alone (cautious); tests spanning models
        # (relationships) become tasks of their own after all their models were built.
        execution_config=ExecutionConfig(
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.AUTOMATIC,  # the manifest when there is one, else dbt ls
            invocation_mode=InvocationMode.DBT_RUNNER,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
        ),
        operator_args=operator_args,
    )
