"""The batch DAGs' building blocks: the writer tasks, the Spark submission and the dbt builds.

`retail_batch` (hourly) and `retail_backfill` (manual, a date range) differ only in the hours they
recompute (`spark.hours`) and in whether dbt fully refreshes the incremental models.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retail.dbt import DBT_PROJECT_DIR, DBT_SESSION_ENV
from retail.settings import POSTGRES_CONN_ID, PROJECT_ROOT, Settings
from retail.spark_conf import cluster_conf
from retail.writer_lock import WRITER_POOL, writer_lock

BATCH_JOB = PROJECT_ROOT / "spark" / "batch_job.py"
VENV_BIN = Path(sys.executable).parent


def spark_submit_env(settings: Settings) -> dict[str, str]:
    """What spark-submit needs from this platform: its Java and this venv's Python (spark-submit itself
    is found on PATH, which `stack.airflow` starts with this venv's bin folder)."""
    from retail.java import spark_java_home

    return {
        "JAVA_HOME": str(spark_java_home(settings)),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


# Writer tasks hold the writer lock from pre_execute to post_execute, or to the failure/retry/skip
# callback when execute raised (a task killed with its process loses the session, and with it the lock).
_HELD_LOCKS: dict[str, contextlib.ExitStack] = {}


def _task_key(context: Mapping[str, Any]) -> str:
    ti = context["ti"]
    return f"{ti.dag_id}.{ti.task_id}.{ti.run_id}.{getattr(ti, 'map_index', -1)}"


def take_writer_lock(context: Mapping[str, Any]) -> None:
    """`pre_execute` of writer tasks: wait for the writer lock (CLI writers hold it too)."""
    from retail.settings import get_settings

    ti = context["ti"]
    release_writer_lock(context)
    stack = contextlib.ExitStack()
    stack.enter_context(writer_lock(get_settings(), f"airflow:{ti.dag_id}.{ti.task_id}"))
    _HELD_LOCKS[_task_key(context)] = stack


def release_writer_lock(context: Mapping[str, Any], result: Any = None) -> None:
    """`post_execute` and failure/retry callback of writer tasks: give the writer lock back."""
    stack = _HELD_LOCKS.pop(_task_key(context), None)
    if stack is not None:
        stack.close()


def take_writer_lock_for_dbt(context: Mapping[str, Any]) -> None:
    """`pre_execute` of the Cosmos tasks: dbt runs in this process, so first its cheap flag naming
    (`retail.dbt.cheap_behavior_flag_source`), then the writer lock."""
    from retail.dbt import cheap_behavior_flag_source

    cheap_behavior_flag_source()
    take_writer_lock(context)


def writer_task_args(settings: Settings) -> dict[str, Any]:
    """Arguments of every task that writes batch tables or marts: the one-slot pool, the writer lock,
    the timeout, and failure alerts (`dags.common.callbacks`)."""
    from dags.common.callbacks import on_task_failure, task_defaults

    return {
        "pool": WRITER_POOL,
        "execution_timeout": task_defaults(settings)["execution_timeout"],
        "pre_execute": take_writer_lock,
        "post_execute": release_writer_lock,
        "on_retry_callback": release_writer_lock,
        "on_skipped_callback": release_writer_lock,
        "on_failure_callback": [release_writer_lock, on_task_failure],
    }


def recompute_operator(
    task_id: str, settings: Settings, plan_task_id: str, *, closing: bool = False, **kwargs: Any
) -> Any:
    """A SparkSubmitOperator running spark/batch_job.py over what the plan task returned: `start` and
    `end` (a backfill's range), or with `closing` its `as_of` (the job plans the hourly closing itself,
    `plan_closing`, so a long list of late hours never goes through the command line)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    class BatchJobSubmitOperator(SparkSubmitOperator):
        """Resolves Java and PATH when the task runs, on the worker, not when the DAG file is parsed."""

        def execute(self, context: Any) -> None:
            from retail.settings import get_settings

            self.env_vars = {**spark_submit_env(get_settings()), **(self.env_vars or {})}
            super().execute(context)

    def planned(key: str) -> str:
        return f"{{{{ ti.xcom_pull(task_ids='{plan_task_id}')['{key}'] }}}}"

    hours = ["--start", planned("start"), "--end", planned("end")]
    if closing:
        hours = ["--as-of", planned("as_of")]
    return BatchJobSubmitOperator(
        task_id=task_id,
        application=str(BATCH_JOB),
        conn_id=settings.batch_spark_conn_id,
        name="retail-batch-recompute",
        application_args=[*hours, "--run-id", "{{ run_id }}"],
        # The cluster settings travel with every submission (ignored by a local master): executor Python
        # and import path, the driver's address, and the batch job's share of the cores.
        conf={
            "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
            **cluster_conf(settings, settings.spark_batch_cores),
        },
        driver_memory="2g",
        **{**writer_task_args(settings), **kwargs},
    )


# The models that read the batch layer (its staging models and everything downstream of them): they
# wait for the Spark recompute; every other model is derived from raw and builds even when Spark fails.
# dbt's default (eager) indirect selection puts a test spanning both sides (a relationship from a serving
# model to a dimension) with the serving build only: excluded from one build, selected by the other.
BATCH_STAGING = ("stg_batch__product_metrics_minute", "stg_batch__closed_hours")
BATCH_DEPENDENT = [f"{name}+" for name in BATCH_STAGING]
# dbt threads of a build task: its models wait on PostgreSQL more than on Python, so more than the cores.
DBT_BUILD_THREADS = 4


def raw_and_serving_builds(settings: Settings) -> tuple[Any, Any]:
    """`build_marts` (every model derived from raw alone: never waits for Spark) and `build_serving` (the
    models reading the batch layer, and every test touching one of them), for the hourly DAG."""
    return (
        dbt_build_operator("build_marts", settings, exclude=BATCH_DEPENDENT),
        dbt_build_operator("build_serving", settings, select=BATCH_DEPENDENT),
    )


def dbt_build_operator(
    task_id: str,
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
) -> Any:
    """One `dbt build` of the project (or its `select`/`exclude` part) as one Airflow task (Cosmos's
    DbtBuildLocalOperator): every model, snapshot and test of the selection in dependency order, a
    failed node skipping what depends on it. One invocation instead of one per model: dbt's start-up
    (seconds on two busy cores) is paid once. A failure names the failed nodes in the task's exception,
    hence in its `ops.alerts` row. The task is a writer (`writer_task_args`).

    The profile comes from the `retail_postgres` connection (`stack.airflow.connections`), so no
    credential is written into the DAG; dbt runs in-process (dbtRunner) and reuses the partial parse
    Cosmos caches per stack.
    """
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtBuildLocalOperator
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    from dags.common.callbacks import on_dbt_warning

    refresh: dict[str, Any] = {}
    if full_refresh:
        # Backfills rebuild every row of the incremental models, so their tests check every row too.
        refresh = {"full_refresh": True, "vars": {"test_lookback": "all"}}
    return DbtBuildLocalOperator(
        task_id=task_id,
        project_dir=str(DBT_PROJECT_DIR),
        profile_config=ProfileConfig(
            profile_name="retail",
            target_name="default",
            profile_mapping=PostgresUserPasswordProfileMapping(
                conn_id=POSTGRES_CONN_ID, profile_args={"schema": "marts", "threads": DBT_BUILD_THREADS}
            ),
        ),
        invocation_mode=InvocationMode.DBT_RUNNER,
        install_deps=False,
        env=dict(DBT_SESSION_ENV),
        select=" ".join(select) if select else None,
        exclude=" ".join(exclude) if exclude else None,
        on_warning_callback=on_dbt_warning,  # warn-level test results reach ops.alerts
        # No Asset per model: nothing schedules on them (retail_ml waits for `marts`), and deriving them
        # from dbt's OpenLineage events took ~3 s per build.
        emit_datasets=False,
        **refresh,
        **{**writer_task_args(settings), "pre_execute": take_writer_lock_for_dbt},
    )
