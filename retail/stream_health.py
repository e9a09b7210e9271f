"""The speed layer's health as `retail status`, the Pipeline health page and on-call should see it.

A process that supervisord shows as running can still have a stopped query, be restarting in a loop,
or have continued over a broker gap. So the streaming job records each query's state (its listener,
in ops.stream_status), each failure of its own (ops.stream_failures, with an `error` alert), and the
source records lost messages (ops.kafka_log_changes, with an `error` alert). `stream_health` reads them.
A query alive but making no progress is caught by the stall rule (`stall`): messages wait in the broker
and nothing landed (ops.kafka_log_landed, written in each batch's transaction) for `stall_s`.
After `max_failures` failures within `window_s`, the job stops restarting itself: it records a
`critical` alert and exits in a state supervisord does not restart (see `spark.streaming_job.main`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from retail.log_identity import unlanded

ALERT_SOURCE = "speed_layer"
State = Literal["ok", "degraded", "failed"]


@dataclass(frozen=True)
class StreamHealth:
    state: State
    reason: str


# (topic, topic id, partition) -> an offset: the broker's end, or the next offset to land
LogOffsets = Mapping[tuple[str, str, int], int]
# {(topic, partition): offset of its oldest waiting message} -> {topic: when the oldest reached the broker}
Arrivals = Callable[[dict[tuple[str, int], int]], Mapping[str, datetime]]


@dataclass(frozen=True)
class Stall:
    """Messages waiting per topic that nothing landed of for longer than the stall limit."""

    waiting: dict[str, int]
    idle_s: dict[str, float]

    def reason(self, stall_s: float) -> str:
        parts = "; ".join(
            f"{topic}: {self.waiting[topic]} messages waiting, nothing landed for {self.idle_s[topic]:.0f} s"
            for topic in sorted(self.waiting)
        )
        return f"stalled (no batch landed for over {stall_s:.0f} s, RETAIL_STREAM_STALL_S): {parts}"


def stall(
    ends: LogOffsets,
    landed: LogOffsets,
    landed_at: Mapping[tuple[str, str], datetime],
    started_at: datetime | None,
    now: datetime,
    stall_s: float,
    waiting_since: Mapping[str, datetime] | None = None,
) -> Stall | None:
    """The stall rule. A topic is stalled when its current log (the topic id of `ends`; after a broker
    restart offsets start again at 0, so other logs are ignored) holds messages beyond `landed` and
    nothing of that log landed (`landed_at`, per (topic, topic id)) for over `stall_s`. Idle (nothing
    waiting) is not stalled, nor is a stream started (`started_at`) less than `stall_s` ago or not running
    (None: the query states say why). `waiting_since` (per topic, when an observer first saw messages
    waiting) also restarts the clock: messages that arrive after a long idle have not stalled yet."""
    if started_at is None or (now - started_at).total_seconds() <= stall_s:
        return None
    waiting: dict[str, int] = {}
    idle: dict[str, float] = {}
    for topic, topic_id in sorted({(t, i) for t, i, _ in ends}):
        log_ends = {p: e for (t, i, p), e in ends.items() if (t, i) == (topic, topic_id)}
        log_landed = {p: o for (t, i, p), o in landed.items() if (t, i) == (topic, topic_id)}
        count = sum(unlanded({}, log_ends, log_landed).values())
        last = max(
            landed_at.get((topic, topic_id), started_at),
            started_at,
            (waiting_since or {}).get(topic, started_at),
        )
        idle_s = (now - last).total_seconds()
        if count and idle_s > stall_s:
            waiting[topic] = waiting.get(topic, 0) + count
            idle[topic] = idle_s
    return Stall(waiting, idle) if waiting else None


def read_stall(
    conn: psycopg.Connection,
    stall_s: float,
    broker_ends: LogOffsets | None = None,
    topics: tuple[str, ...] = (),
    waiting_since: Mapping[str, datetime] | None = None,
    arrivals: Arrivals | None = None,
) -> Stall | None:
    """The stall rule over the ops tables: the ends are the broker's answer when the caller could reach
    it (`broker_ends`), else the highest ends the job's watcher recorded (ops.kafka_log_ends, raised every
    2 s while the job's process lives) of the newest log of each of `topics`. `arrivals`, asked only
    about a stall, gives when the oldest waiting messages reached the broker (their record timestamps),
    so a caller without memory does not call a burst after a long idle a stall."""
    if broker_ends is None:
        rows = conn.execute(
            """select topic, topic_id, kafka_partition, end_offset from ops.kafka_log_ends e
               where topic = any(%s)
                 and topic_id = (select topic_id from ops.kafka_log_ends n where n.topic = e.topic
                                 order by seen_at desc limit 1)""",
            (list(topics),),
        ).fetchall()
        broker_ends = {(t, i, p): e for t, i, p, e in rows}
    landed_rows = conn.execute(
        "select topic, topic_id, kafka_partition, next_offset, landed_at from ops.kafka_log_landed"
    ).fetchall()
    # The latest start of a running query: a restarted query gets its own `stall_s` too.
    started = conn.execute(
        "select max(changed_at) filter (where state = 'running'), now() from ops.stream_status"
    ).fetchone()
    if not started or started[0] is None:
        return None
    landed_at: dict[tuple[str, str], datetime] = {}
    for t, i, _, _, at in landed_rows:
        landed_at[(t, i)] = max(landed_at.get((t, i), at), at)
    landed = {(t, i, p): o for t, i, p, o, _ in landed_rows}
    found = stall(broker_ends, landed, landed_at, started[0], started[1], stall_s, waiting_since)
    if found is None or arrivals is None:
        return found
    oldest = {
        (t, p): landed.get((t, i, p), 0)
        for (t, i, p), end in broker_ends.items()
        if t in found.waiting and end > landed.get((t, i, p), 0)
    }
    since = dict(waiting_since or {})
    for topic, at in arrivals(oldest).items():
        since[topic] = max(since.get(topic, at), min(at, started[1]))
    return stall(broker_ends, landed, landed_at, started[0], started[1], stall_s, since)


def record_stall_alert(dsn: str, found: Stall, stall_s: float) -> None:
    """One `warning` alert with the counts, written by the job's watcher when a stall begins."""
    context = {"waiting": found.waiting, "idle_s": {t: round(s) for t, s in found.idle_s.items()}}
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        conn.execute(
            "insert into ops.alerts (source, severity, message, context)"
            " values (%s, 'warning', %s, %s::jsonb)",
            (ALERT_SOURCE, f"speed layer {found.reason(stall_s)}", json.dumps(context)),
        )


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


def stream_health(
    dsn: str,
    window_s: float = 600.0,
    stall_s: float = 120.0,
    broker_ends: LogOffsets | None = None,
    topics: tuple[str, ...] = (),
    arrivals: Arrivals | None = None,
) -> StreamHealth:
    """failed: the job gave up, or a query is stopped by a failure; degraded: it failed and restarted
    within `window_s`, messages were lost to a replaced broker log within the last day, or it is stalled
    (`read_stall`: `broker_ends`, `topics`, the stream's, and `arrivals` as there)."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        stalled = read_stall(conn, stall_s, broker_ends, topics, arrivals=arrivals)
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
    if stalled:
        return StreamHealth("degraded", stalled.reason(stall_s))
    return StreamHealth("ok", "")


def failure_message(error: BaseException) -> str:
    """The actionable line of a query failure (a SourceDataLoss message when that is the cause)."""
    text = str(error)
    match = re.search(r"SourceDataLoss: [^\n]*", text)
    if match:
        return match.group(0)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
