"""Record every streaming query's progress in ops.stream_progress, for the dashboard's health page.

A StreamingQueryListener runs on the driver and sees each micro-batch's progress report: input and
processed rows per second and batch duration come from Spark; the watermark of a raw query is its
topic's own (ops.stream_watermarks, kept by the sink, as Spark's is not used); rows written and dead letters
come from the batch's `ops.sink_commits` row for Postgres sinks (Spark cannot see inside foreachBatch) and
from the sink's reported output rows for the lake's file sinks. Failing to record progress is logged and
never stops a query.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import psycopg
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from retail.stream_health import failure_message, record_query_state
from spark.transformations import WATERMARK_DELAY_S

log = logging.getLogger(__name__)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ProgressRecorder(StreamingQueryListener):
    """Inserts one ops.stream_progress row per (query, run, batch)."""

    def __init__(self, dsn: str, watermarks: dict[str, str] | None = None) -> None:
        self._dsn = dsn
        # query name -> ops.stream_watermarks name (its topic)
        self._watermarks = dict(watermarks or {})
        # query id -> name: a termination event carries only the id
        self._names: dict[str, str] = {}
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
        return self._conn

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        log.info("streaming query %s started (id %s, run %s)", event.name, event.id, event.runId)
        self._names[str(event.id)] = event.name or str(event.id)
        self._state(event.name or str(event.id), "running", None, str(event.runId))

    def _state(self, name: str, state: str, reason: str | None, run_id: str) -> None:
        """ops.stream_status for `retail status` and the health page; never stops a query."""
        try:
            record_query_state(self._dsn, name, state, reason, run_id)
        except psycopg.Error as error:
            log.warning("could not record the state of %s: %s", name, error)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        progress = event.progress
        sink_rows = progress.sink.numOutputRows if progress.sink is not None else -1
        params = {
            "query_name": progress.name or str(progress.id),
            "query_id": str(progress.id),
            "run_id": str(progress.runId),
            "batch_id": progress.batchId,
            "reported_at": _timestamp(progress.timestamp),
            "input_rows": progress.numInputRows,
            "input_rate": progress.inputRowsPerSecond,
            "processed_rate": progress.processedRowsPerSecond,
            "duration_ms": progress.batchDuration,
            "watermark": _timestamp((progress.eventTime or {}).get("watermark")),
            "watermark_name": self._watermarks.get(progress.name or ""),
            "delay_s": WATERMARK_DELAY_S,
            "sink_rows": sink_rows if sink_rows is not None and sink_rows >= 0 else None,
        }
        try:
            with self._lock:
                self._connection().execute(
                    """insert into ops.stream_progress (query_name, run_id, batch_id, reported_at, input_rows,
                           input_rows_per_s, processed_rows_per_s, batch_duration_ms, watermark, rows_written,
                           dead_letters)
                       select %(query_name)s, %(run_id)s, %(batch_id)s, %(reported_at)s, %(input_rows)s,
                           %(input_rate)s, %(processed_rate)s, %(duration_ms)s,
                           coalesce(%(watermark)s, (select w.max_event_ts - make_interval(secs => %(delay_s)s)
                               from ops.stream_watermarks w where w.watermark_name = %(watermark_name)s)),
                           coalesce(c.rows_written, %(sink_rows)s), c.dead_letters
                       from (select 1) as one
                       left join ops.sink_commits c on c.query_name = %(query_name)s
                           and c.query_id = %(query_id)s and c.batch_id = %(batch_id)s
                       on conflict (query_name, run_id, batch_id) do nothing""",
                    params,
                )
        except psycopg.Error as error:
            log.warning(
                "could not record progress of %s batch %s: %s",
                params["query_name"],
                params["batch_id"],
                error,
            )
            if self._conn is not None:
                self._conn.close()

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        """Idle triggers write nothing: the last progress row stays the latest."""

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        name = self._names.get(str(event.id), str(event.id))
        if event.exception:
            reason = failure_message(RuntimeError(event.exception))
            log.error("streaming query %s stopped: %s", name, reason)
            self._state(name, "failed", reason, str(event.runId))
        else:
            self._state(name, "stopped", None, str(event.runId))
