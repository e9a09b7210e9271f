"""The batch DAGs' building blocks: which hours to recompute, the Spark submission and the dbt builds.

`retail_batch` (hourly) and `retail_backfill` (manual, a date range) differ only in the hours they
recompute and in whether dbt fully refreshes the incremental models; both DAG files call these.
Only the DAG files import this module's Airflow parts (operators and Cosmos are imported lazily, so
`plan_hours` can be unit-tested without Airflow).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retail.dbt import DBT_PROJECT_DIR
from retail.settings import PROJECT_ROOT, Settings
from retail.spark_conf import cluster_conf
from retail.writer_lock import WRITER_POOL, writer_lock

if TYPE_CHECKING:
    import psycopg

BATCH_JOB = PROJECT_ROOT / "spark" / "batch_job.py"
VENV_BIN = Path(sys.executable).parent


class BadRange(ValueError):
    """A backfill range that cannot be recomputed (the message says how to fix it)."""


def _floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def closing_cutoff(settings: Settings, as_of: datetime) -> datetime:
    """The end of the latest hour that is closed at `as_of` (it ended at least the close delay ago).

    Through the epoch: Airflow's pendulum datetimes lose their zone in `astimezone(datetime.UTC)`.
    """
    moment = datetime.fromtimestamp(as_of.timestamp(), UTC)
    return _floor_hour(moment - timedelta(minutes=settings.batch_close_delay_min))


def plan_hours(settings: Settings, as_of: datetime) -> dict[str, str]:
    """The hourly run's range: the lookback hours closed at `as_of`, as batch_job arguments."""
    end = closing_cutoff(settings, as_of)
    start = end - timedelta(hours=settings.batch_lookback_hours)
    return {"start": start.isoformat(), "end": end.isoformat()}


@dataclass(frozen=True)
class ClosingPlan:
    """What a default run closes: the lookback [start, end) and older hours holding late events."""

    lookback_start: datetime
    lookback_end: datetime
    late_hours: list[datetime]
    stream_time: datetime | None

    def summary(self) -> dict[str, Any]:
        return {
            "start": self.lookback_start.isoformat(),
            "end": self.lookback_end.isoformat(),
            "late_hours": len(self.late_hours),
            "stream_time": self.stream_time.isoformat() if self.stream_time else None,
        }


def stream_time(settings: Settings, conn: psycopg.Connection) -> datetime | None:
    """How far the stream has landed in event time, while it is landing: the least `max_event_ts` of the
    watermarks committed within the last RETAIL_BATCH_STREAM_QUIET_S. None when the stream is quiet
    (caught up, idle or stopped: nothing is known to be pending) or the check is off (0)."""
    if settings.batch_stream_quiet_s <= 0:
        return None
    row = conn.execute(
        """select extract(epoch from min(max_event_ts)) from ops.stream_watermarks
           where updated_at > now() - make_interval(secs => %s)""",
        (settings.batch_stream_quiet_s,),
    ).fetchone()
    return datetime.fromtimestamp(float(row[0]), UTC) if row and row[0] is not None else None


def late_hours(conn: psycopg.Connection, before: datetime) -> list[datetime]:
    """Hours ending by `before` with late events (ops.late_events) counted after the hour was last closed
    (or never closed): the stream left facts of them out, so the batch layer must close them."""
    # Epoch seconds, not timestamps: a process that registered other psycopg loaders (Airflow's task
    # runner) got zone-less datetimes back, which do not compare with the aware hours planned here.
    rows = conn.execute(
        """select extract(epoch from late.hour_start)
           from (select date_trunc('hour', event_minute, 'UTC') as hour_start, max(updated_at) as updated_at
                 from ops.late_events group by 1) as late
           left join batch.closed_hours as closed on closed.hour_start = late.hour_start
           where late.hour_start + interval '1 hour' <= %s
             and (closed.closed_at is null or late.updated_at > closed.closed_at)
           order by 1""",
        (before,),
    ).fetchall()
    return [datetime.fromtimestamp(float(epoch), UTC) for (epoch,) in rows]


def plan_closing(settings: Settings, conn: psycopg.Connection, as_of: datetime) -> ClosingPlan:
    """The hourly run's (and `retail batch`'s) plan as of `as_of`.

    An hour closes when it ended the close delay before `as_of` and before the stream's event time
    (a stream still landing a backlog has not caught up past the hours it has not reached). Besides the
    lookback, every older hour with late events the batch layer has not seen yet, whatever its age.
    """
    landed = stream_time(settings, conn)
    end = closing_cutoff(settings, min(as_of, landed) if landed else as_of)
    start = end - timedelta(hours=settings.batch_lookback_hours)
    late = [hour for hour in late_hours(conn, end) if not start <= hour < end]
    return ClosingPlan(start, end, late, landed)


def describe_closing(settings: Settings, as_of: datetime) -> dict[str, Any]:
    """`as_of` for the batch job's `--as-of`, with what it would close now (for the task's log)."""
    from retail.db import connect

    with connect(settings) as conn:
        plan = plan_closing(settings, conn, as_of)
    return {"as_of": datetime.fromtimestamp(as_of.timestamp(), UTC).isoformat(), **plan.summary()}


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
    the timeout, and failure alerts (`retail.alerts`)."""
    from retail.alerts import on_task_failure, task_defaults

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

    The profile comes from the `retail_postgres` connection (`retail.stack.airflow.connections`), so no
    credential is written into the DAG; dbt runs in-process (dbtRunner) and reuses the partial parse
    Cosmos caches per stack.
    """
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode
    from cosmos.operators.local import DbtBuildLocalOperator
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    from retail.alerts import on_dbt_warning
    from retail.stack.airflow import POSTGRES_CONN_ID

    env = {
        # Sessions in UTC (dbt snapshots stamp zone-less times), no phoning home.
        "PGTZ": "UTC",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }
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
        env=env,
        select=" ".join(select) if select else None,
        exclude=" ".join(exclude) if exclude else None,
        on_warning_callback=on_dbt_warning,  # warn-level test results reach ops.alerts
        # No Asset per model: nothing schedules on them (retail_ml waits for `marts`), and deriving them
        # from dbt's OpenLineage events took ~3 s per build.
        emit_datasets=False,
        **refresh,
        **{**writer_task_args(settings), "pre_execute": take_writer_lock_for_dbt},
    )
