"""The batch DAGs' building blocks: the writer tasks, the Spark submission and the dbt task groups.

`retail_batch` (hourly) and `retail_backfill` (manual, a date range) differ only in the hours they
recompute (`spark.hours`) and in whether dbt fully refreshes the incremental models.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retail.dbt import DBT_PROJECT_DIR, manifest_path
from retail.settings import POSTGRES_CONN_ID, PROJECT_ROOT, Settings
from retail.spark_conf import cluster_conf
from retail.writer_lock import WRITER_POOL, writer_lock

if TYPE_CHECKING:
    from cosmos import DbtTaskGroup

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
# (Cosmos's `source:` selector does not reach models when rendering from the manifest.)
BATCH_STAGING = ("stg_batch__product_metrics_minute", "stg_batch__closed_hours")
BATCH_DEPENDENT = [f"{name}+" for name in BATCH_STAGING]


def batch_dependent_tests(settings: Settings) -> list[str]:
    """Names of the tests with several parents of which one is batch-dependent.

    Cosmos renders such a test in every group holding one of its parents, even one that excludes the
    others: in the raw-derived group it would run before (or without) the batch-dependent model it
    checks. Read from the manifest the DAG is rendered from; none without one.
    """
    path = manifest_path(settings)
    if not path.is_file():
        return []
    manifest = json.loads(path.read_text(encoding="utf-8"))
    nodes, children = manifest["nodes"], manifest["child_map"]
    pending = [uid for uid, node in nodes.items() if node.get("name") in BATCH_STAGING]
    reached: set[str] = set()
    while pending:
        uid = pending.pop()
        if uid not in reached:
            reached.add(uid)
            pending.extend(children.get(uid, []))
    return sorted(
        nodes[uid]["name"]
        for uid in reached
        if uid.startswith("test.") and len(nodes[uid]["depends_on"]["nodes"]) > 1
    )


def raw_and_serving_groups(settings: Settings) -> tuple[DbtTaskGroup, DbtTaskGroup]:
    """`marts` (every model derived from raw alone: never waits for Spark) and `serving` (the models
    reading the batch layer, and every test touching one of them), for the hourly DAG."""
    tests = batch_dependent_tests(settings)
    raw = marts_task_group("marts", settings, exclude=BATCH_DEPENDENT)
    serving = marts_task_group("serving", settings, select=[*BATCH_DEPENDENT, *tests])
    for name in tests:
        _drop_task(raw, f"{raw.group_id}.{name}_test")
    return raw, serving


def _drop_task(group: Any, task_id: str) -> None:
    """Remove a leaf task Cosmos rendered into `group` (see `batch_dependent_tests`) before wiring."""
    task = group.dag.task_dict.pop(task_id, None)
    if task is None:
        return
    group.children.pop(task_id, None)
    for upstream_id in task.upstream_task_ids:
        group.dag.task_dict[upstream_id].downstream_task_ids.discard(task_id)


def marts_task_group(
    group_id: str,
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
) -> DbtTaskGroup:
    """The dbt project (or the `select`/`exclude` part of it) as Airflow tasks (Cosmos): one `dbt build`
    per model and snapshot, running it and its tests in one invocation (TestBehavior.BUILD: half the
    invocations, each paying dbt's start-up, of a run then a test per node). Every task is a writer
    (`writer_task_args`).

    The profile comes from the `retail_postgres` connection (`stack.airflow.connections`), so no
    credential is written into the DAG. The graph is read from the manifest `retail up` keeps current
    (`retail.dbt.ensure_manifest`); without one, Cosmos falls back to `dbt ls` (slow, then cached).
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    from dags.common.callbacks import on_dbt_warning

    env = {
        # Sessions in UTC (dbt snapshots stamp zone-less times), no phoning home.
        "PGTZ": "UTC",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }
    operator_args: dict[str, Any] = {**writer_task_args(settings), "pre_execute": take_writer_lock_for_dbt}
    if full_refresh:
        # Backfills rebuild every row of the incremental models, so their tests check every row too.
        operator_args.update(full_refresh=True, vars={"test_lookback": "all"})
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
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            select=select or [],
            exclude=exclude or [],
        ),
        operator_args=operator_args,
        on_warning_callback=on_dbt_warning,  # warn-level test results reach ops.alerts
    )
