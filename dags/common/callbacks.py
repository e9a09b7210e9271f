"""Airflow callbacks and task defaults of every platform DAG: failures become alerts in ``ops.alerts``
(``retail.alerts``), outcomes rows in ``ops.task_runs``.

The failure callback runs once per failed task after its last retry (Airflow does not call it for a try
that will be retried), so each alert is a failure someone has to look at. ``ops.task_runs`` is where the
dashboard shows each DAG's last runs (its read-only role cannot read Airflow's metadata database).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from retail.alerts import record_alert
from retail.db import transaction
from retail.settings import Settings, get_settings


@dataclass(frozen=True)
class _TaskIdentity:
    """Which task a callback's context is about; Airflow fills the context differently per callback kind."""

    task_instance: Any
    dag_id: str
    task_id: str
    run_id: str | None


def _task_identity(context: Mapping[str, Any]) -> _TaskIdentity:
    task_instance = context.get("ti") or context.get("task_instance")
    return _TaskIdentity(
        task_instance,
        getattr(task_instance, "dag_id", None) or getattr(context.get("dag"), "dag_id", "unknown"),
        getattr(task_instance, "task_id", "unknown"),
        context.get("run_id") or getattr(task_instance, "run_id", None),
    )


def record_task_run(
    settings: Settings, context: Mapping[str, Any], state: Literal["success", "failed"]
) -> None:
    """Upsert the task's outcome into ops.task_runs (a rerun of the same task replaces its row)."""
    task = _task_identity(context)
    task_instance = task.task_instance
    map_index = getattr(task_instance, "map_index", None)
    with transaction(settings) as conn:
        conn.execute(
            """insert into ops.task_runs (dag_id, run_id, task_id, map_index, try_number, state, logical_date,
                   started_at, finished_at)
               values (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
               on conflict (dag_id, run_id, task_id, map_index) do update set
                   try_number = excluded.try_number, state = excluded.state,
                   started_at = excluded.started_at, finished_at = excluded.finished_at,
                   recorded_at = now()""",
            (
                task.dag_id,
                str(task.run_id or "unknown"),
                task.task_id,
                map_index if isinstance(map_index, int) else -1,
                getattr(task_instance, "try_number", None),
                state,
                context.get("logical_date"),
                getattr(task_instance, "start_date", None),
                getattr(task_instance, "end_date", None),
            ),
        )


def on_task_success(context: Mapping[str, Any]) -> None:
    """Airflow ``on_success_callback``: records the task's success in ops.task_runs."""
    record_task_run(get_settings(), context, "success")


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one ``error`` alert naming the DAG, task, run, try and the cause."""
    task = _task_identity(context)
    dag_id, task_id = task.dag_id, task.task_id
    exception = context.get("exception")
    cause = f"{type(exception).__name__}: {exception}" if exception is not None else "no exception recorded"
    record_alert(
        get_settings(),
        source=f"airflow:{dag_id}.{task_id}",
        message=f"task {dag_id}.{task_id} failed: {cause}",
        severity="error",
        context={
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": task.run_id,
            "try_number": getattr(task.task_instance, "try_number", None),
            "map_index": getattr(task.task_instance, "map_index", None),
            "logical_date": context.get("logical_date"),
        },
    )
    record_task_run(get_settings(), context, "failed")


def on_dag_run_failure(context: Mapping[str, Any]) -> None:
    """DAG-level ``on_failure_callback``: one ``error`` alert when a run fails, e.g. past its dagrun_timeout.

    A run that timed out has no failed task to alert for (its running task is killed, the queued ones
    are skipped), so without this the hourly batch would stop with no trace in ops.alerts.
    """
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "unknown")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id")
    reason = str(context.get("reason") or "a task failed")
    record_alert(
        get_settings(),
        source=f"airflow:{dag_id}",
        message=f"DAG run {dag_id} {run_id} failed: {reason}",
        severity="error",
        context={"dag_id": dag_id, "run_id": run_id, "reason": reason},
    )


def on_dbt_warning(context: Mapping[str, Any]) -> None:
    """Cosmos ``on_warning_callback``: dbt tests that warned (severity warn) become one ``warning`` alert,
    so they are seen next to the failures instead of only in a task log. Cosmos's build operator calls it
    after every build, warnings or not: a build without any is no alert."""
    names = list(context.get("test_names") or [])
    if not names:
        return
    task = _task_identity(context)
    dag_id, task_id = task.dag_id, task.task_id
    record_alert(
        get_settings(),
        source=f"dbt:{dag_id}.{task_id}",
        message=f"dbt tests warned in {dag_id}.{task_id}: {', '.join(names)}",
        severity="warning",
        context={
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": task.run_id,
            "tests": names,
            "results": [str(result) for result in context.get("test_results") or []],
        },
    )


def task_defaults(settings: Settings) -> dict[str, Any]:
    """DEFAULT_TASK_ARGS with the retries (RETAIL_BATCH_TASK_RETRIES) and the execution timeout
    (RETAIL_BATCH_TASK_TIMEOUT_MIN): a hung task fails and alerts instead of blocking every later run."""
    return {
        **DEFAULT_TASK_ARGS,
        "retries": settings.batch_task_retries,
        "execution_timeout": timedelta(minutes=settings.batch_task_timeout_min),
    }


# Task defaults of every platform DAG: retries with exponential backoff, failures recorded in ops.alerts.
DEFAULT_TASK_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": on_task_failure,
    "on_success_callback": on_task_success,
}
