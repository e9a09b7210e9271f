"""Which hours the batch layer closes: the hourly run's lookback, late hours, a backfill's range.

Pure planning over settings and the ops tables, shared by the batch job (`spark/batch_job.py`), the DAGs'
plan tasks and `retail batch`/`retail demo`, so every path closes the same hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from retail.settings import Settings

if TYPE_CHECKING:
    import psycopg


class BadRange(ValueError):
    """A backfill range that cannot be recomputed (the message says how to fix it)."""


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment` (an aware datetime in UTC)."""
    return moment.replace(minute=0, second=0, microsecond=0)


def closing_cutoff(settings: Settings, as_of: datetime) -> datetime:
    """The end of the latest hour that is closed at `as_of` (it ended at least the close delay ago).

    Through the epoch: Airflow's pendulum datetimes lose their zone in `astimezone(datetime.UTC)`.
    """
    moment = datetime.fromtimestamp(as_of.timestamp(), UTC)
    return floor_hour(moment - timedelta(minutes=settings.batch_close_delay_min))


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
