"""Alerts in ``ops.alerts``: where the dashboard and on-call look first when something failed.

Airflow's own task logs say *what* failed in detail; an alert row makes failures queryable next to the
data they concern (same database, read by the analyst role and the dashboard), independent of Airflow's
UI and log retention. DAGs use ``on_task_failure`` as ``on_failure_callback`` in their ``default_args``::

    from retail.alerts import on_task_failure
    default_args = {"retries": 2, "on_failure_callback": on_task_failure}

The callback runs once per failed task after its last retry (Airflow does not call it for a try that
will be retried), so each alert is a failure someone has to look at.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from retail.db import transaction
from retail.settings import Settings, get_settings

Severity = Literal["info", "warning", "error", "critical"]
_MAX_MESSAGE_CHARS = 2000


def record_alert(
    settings: Settings,
    source: str,
    message: str,
    severity: Severity = "error",
    context: Mapping[str, Any] | None = None,
) -> int:
    """Insert one alert and return its id."""
    with transaction(settings) as conn:
        row = conn.execute(
            """insert into ops.alerts (source, severity, message, context)
               values (%s, %s, %s, %s::jsonb) returning alert_id""",
            (source, severity, message[:_MAX_MESSAGE_CHARS], json.dumps(dict(context or {}), default=str)),
        ).fetchone()
    assert row is not None  # insert ... returning always yields the row
    return int(row[0])


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one ``error`` alert naming the DAG, task, run, try and the cause."""
    task_instance = context.get("ti") or context.get("task_instance")
    dag_id = getattr(task_instance, "dag_id", None) or getattr(context.get("dag"), "dag_id", "unknown")
    task_id = getattr(task_instance, "task_id", "unknown")
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
            "run_id": context.get("run_id") or getattr(task_instance, "run_id", None),
            "try_number": getattr(task_instance, "try_number", None),
            "map_index": getattr(task_instance, "map_index", None),
            "logical_date": context.get("logical_date"),
        },
    )


# Task defaults of every platform DAG: retries with exponential backoff, failures recorded in ops.alerts.
DEFAULT_TASK_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": on_task_failure,
}
