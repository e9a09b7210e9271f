"""The speed layer's health as `retail status`, the Pipeline health page and on-call should see it.

A process that supervisord shows as running can still have a stopped query, be restarting in a loop,
or have continued over a broker gap. So the streaming job records each query's state (its listener,
in ops.stream_status), each failure of its own (ops.stream_failures, with an `error` alert), and the
source records lost messages (ops.kafka_log_changes, with an `error` alert). `stream_health` reads them.
After `max_failures` failures within `window_s`, the job stops restarting itself: it records a
`critical` alert and exits in a state supervisord does not restart (see `spark.streaming_job.main`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

import psycopg

ALERT_SOURCE = "speed_layer"
State = Literal["ok", "degraded", "failed"]


@dataclass(frozen=True)
class StreamHealth:
    state: State
    reason: str


def record_query_state(dsn: str, query_name: str, state: str, reason: str | None, run_id: str) -> None:
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        conn.execute(
            """insert into ops.stream_status (query_name, state, reason, run_id) values (%s, %s, %s, %s)
               on conflict (query_name) do update set state = excluded.state, reason = excluded.reason,
                   run_id = excluded.run_id, changed_at = now()""",
            (query_name, state, reason, run_id),
        )


def recent_failures(dsn: str, window_s: float) -> int:
    """Failures of the streaming job within the last `window_s` seconds (since it last gave up)."""
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        row = conn.execute(
            """select count(*) from ops.stream_failures
               where failed_at > now() - make_interval(secs => %s)
                 and failed_at > coalesce((select max(failed_at) from ops.stream_failures where gave_up),
                                          '-infinity')""",
            (window_s,),
        ).fetchone()
    return int(row[0]) if row else 0


def record_failure(dsn: str, reason: str, gave_up: bool = False) -> None:
    """One failure of the streaming job, and its alert (critical when the job gives up)."""
    severity = "critical" if gave_up else "error"
    message = (
        f"streaming job stopped restarting after repeated failures; last: {reason}. Fix the cause, then "
        "`retail up` (or `retail stream`)"
        if gave_up
        else f"streaming job failed and restarts: {reason}"
    )
    with psycopg.connect(dsn, connect_timeout=10) as conn, conn.transaction():
        conn.execute("insert into ops.stream_failures (reason, gave_up) values (%s, %s)", (reason, gave_up))
        conn.execute(
            "insert into ops.alerts (source, severity, message, context) values (%s, %s, %s, %s::jsonb)",
            (ALERT_SOURCE, severity, message[:2000], json.dumps({"gave_up": gave_up})),
        )


def stream_health(dsn: str, window_s: float = 600.0) -> StreamHealth:
    """failed: the job gave up, or a query is stopped by a failure; degraded: it failed and restarted
    within `window_s`, or messages were lost to a replaced broker log within the last day."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        gave_up = conn.execute(
            """select reason from ops.stream_failures where gave_up and failed_at >
                   coalesce((select max(changed_at) from ops.stream_status where state = 'running'),
                            '-infinity')
               order by failed_at desc limit 1"""
        ).fetchone()
        failed_queries = conn.execute(
            "select query_name, reason from ops.stream_status where state = 'failed' order by query_name"
        ).fetchall()
        restarts = conn.execute(
            "select count(*) from ops.stream_failures where failed_at > now() - make_interval(secs => %s)",
            (window_s,),
        ).fetchone()
        lost = conn.execute(
            """select string_agg(format('%s: %s messages lost', topic, lost), '; ' order by detected_at)
               from ops.kafka_log_changes where lost > 0 and detected_at > now() - interval '1 day'"""
        ).fetchone()
    if gave_up:
        return StreamHealth("failed", f"stopped after repeated failures; last: {gave_up[0]}")
    if failed_queries:
        return StreamHealth("failed", "; ".join(f"query {q} stopped: {r}" for q, r in failed_queries))
    if restarts and restarts[0]:
        return StreamHealth(
            "degraded", f"{restarts[0]} failure(s) and restarts in the last {window_s / 60:.0f} min"
        )
    if lost and lost[0]:
        return StreamHealth("degraded", f"broker log replaced: {lost[0]} (see ops.alerts)")
    return StreamHealth("ok", "")


def failure_message(error: BaseException) -> str:
    """The actionable line of a query failure (a SourceDataLoss message when that is the cause)."""
    text = str(error)
    match = re.search(r"SourceDataLoss: [^\n]*", text)
    if match:
        return match.group(0)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
