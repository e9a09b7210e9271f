"""Run bookkeeping in `ml.model_runs`, and publishing a run's outputs atomically.

A run's output rows carry its run_id and are written in the same transaction as its `ml.model_runs` row
(status 'succeeded'); the `ml.*_latest` views select the newest succeeded run, so a reader sees either the
previous run or the whole new one, never half. Skipped runs (too little data) and failed runs get a row of
their own, with the reason, and no output rows.

Retention (`prune_runs`, after each publish): per kind, the last `RETAIL_ML_KEEP_RUNS` succeeded runs
and the newest succeeded run of each ISO week stay, so the latest views and the weekly history that
`ml.segment_transitions` compares against survive; outputs of deleted runs go with them (cascade).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from retail.db import transaction
from retail.settings import Settings

Kind = Literal["segmentation", "association_rules"]


class NotEnoughData(ValueError):
    """The data cannot support the model (no customers, one basket, identical customers): the run is
    recorded as skipped with this message as its reason."""


Status = Literal["succeeded", "skipped", "failed"]


@dataclass
class RunRecord:
    """What `ml.model_runs` holds about one run."""

    kind: Kind
    parameters: dict[str, Any]
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    status: Status = "succeeded"
    reason: str | None = None
    data_from: datetime | None = None
    data_to: datetime | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    silhouette_scores: dict[str, float] | None = None
    chosen_k: int | None = None
    rule_count: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    duration_s: float = 0.0
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    def finish(self, status: Status, reason: str | None = None) -> RunRecord:
        self.status, self.reason = status, reason
        self.finished_at = datetime.now(UTC)
        self.duration_s = time.perf_counter() - self._clock
        return self

    def summary(self) -> dict[str, Any]:
        """JSON-safe essentials of the run (Airflow XCom, Asset event extra, CLI output)."""
        return {
            "run_id": str(self.run_id),
            "kind": self.kind,
            "status": self.status,
            "reason": self.reason,
            "analysis_time": self.data_to.isoformat() if self.data_to else None,
            "row_counts": dict(self.row_counts),
            "chosen_k": self.chosen_k,
            "rule_count": self.rule_count,
            "duration_s": round(self.duration_s, 3),
        }


def insert_run(conn: psycopg.Connection, record: RunRecord) -> None:
    conn.execute(
        "insert into ml.model_runs (run_id, kind, status, reason, parameters, data_from, data_to,"
        " row_counts, silhouette_scores, chosen_k, rule_count, started_at, finished_at, duration_s)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            record.run_id,
            record.kind,
            record.status,
            record.reason,
            Jsonb(record.parameters),
            record.data_from,
            record.data_to,
            Jsonb(record.row_counts),
            Jsonb(record.silhouette_scores) if record.silhouette_scores is not None else None,
            record.chosen_k,
            record.rule_count,
            record.started_at,
            record.finished_at,
            record.duration_s,
        ),
    )


def publish(
    settings: Settings, record: RunRecord, write_outputs: Callable[[psycopg.Connection], None]
) -> RunRecord:
    """Write the outputs and the succeeded run row in one transaction (the atomic visibility point)."""
    with transaction(settings) as conn:
        record.finish("succeeded")
        insert_run(conn, record)  # first: the output rows reference it
        write_outputs(conn)
        record.finish("succeeded")  # the duration includes the write
        conn.execute(
            "update ml.model_runs set finished_at = %s, duration_s = %s where run_id = %s",
            (record.finished_at, record.duration_s, record.run_id),
        )
    return record


def record_without_outputs(settings: Settings, record: RunRecord, status: Status, reason: str) -> RunRecord:
    """A skipped or failed run: its row and reason, no outputs."""
    record.finish(status, reason)
    with transaction(settings) as conn:
        insert_run(conn, record)
    return record


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows: Any) -> None:
    """COPY rows into a table: 100k segment rows in well under a second, inside the caller's transaction."""
    with conn.cursor() as cursor, cursor.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def prune_runs(settings: Settings, kind: Kind) -> int:
    """Delete the runs of `kind` retention does not keep; returns how many runs were deleted."""
    with transaction(settings) as conn:
        deleted = conn.execute(
            """with ranked as (
                   select run_id, status,
                          row_number() over (partition by status = 'succeeded' order by run_number desc)
                              as position,
                          row_number() over (partition by status = 'succeeded',
                                             date_trunc('week', finished_at at time zone 'UTC')
                                             order by run_number desc) as position_in_week
                   from ml.model_runs
                   where kind = %s
               )
               delete from ml.model_runs runs
               using ranked
               where runs.run_id = ranked.run_id
                 and ranked.position > %s
                 and not (ranked.status = 'succeeded' and ranked.position_in_week = 1)""",
            (kind, settings.ml_keep_runs),
        ).rowcount
    return deleted


def due(settings: Settings, now: datetime) -> bool:
    """Whether an Asset-triggered ML run should compute: no succeeded run of some kind within
    RETAIL_ML_MIN_INTERVAL_HOURS (the hourly marts refresh must not retrain every hour)."""
    with transaction(settings) as conn:
        rows = dict(
            conn.execute(
                "select kind, max(finished_at) from ml.model_runs where status = 'succeeded' group by kind"
            ).fetchall()
        )
    cutoff = now - timedelta(hours=settings.ml_min_interval_hours)
    kinds = ("segmentation", "association_rules")
    return any(rows.get(kind) is None or rows[kind] < cutoff for kind in kinds)
