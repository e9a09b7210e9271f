"""The batch layer's recompute: per-product minute metrics of closed hours, from the lake.

The lake is the master dataset (every valid event, late ones included). This job reads the hours with
Spark, stages them in PostgreSQL temporary tables with the stream's own row builders
(`spark.arrow_rows`), and runs the stream's own SQL (`spark.minute_metrics`): the layers can only
differ by the late events the stream's watermark left out. The hours are ``--start``/``--end``, or what
`spark.hours.plan_closing` plans as of ``--as-of`` (default: now). One transaction per run merges the
rows into ``batch.product_metrics_minute`` (unchanged rows untouched, vanished windows deleted) and
records ``batch.closed_hours``, so a rerun changes nothing and a crash leaves the previous state.

    spark-submit spark/batch_job.py [--start ISO --end ISO]   # or: python -m spark.batch_job, retail batch
"""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import pyarrow as pa
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from retail.settings import Settings, get_settings
from spark.arrow_rows import basket_rows, item_rows, refund_rows
from spark.hours import floor_hour, plan_closing, plan_hours
from spark.lake import dataset_path
from spark.minute_metrics import METRIC_COLUMNS, land_baskets, land_lines, land_refunds, minute_metrics
from spark.postgres_sink import copy_arrow

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)


class BatchJobError(RuntimeError):
    """A recompute that must not close hours (the cause and the fix are in the message)."""


@dataclass(frozen=True)
class HourRange:
    """Whole UTC hours [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if bound.tzinfo is None or bound != floor_hour(bound):
                raise BatchJobError(
                    f"{bound.isoformat()} is not a whole UTC hour; pass e.g. 2026-11-24T13:00Z"
                )
        if self.end <= self.start:
            raise BatchJobError(f"empty hour range {self.start.isoformat()} .. {self.end.isoformat()}")

    def hours(self) -> list[datetime]:
        count = int((self.end - self.start) / HOUR)
        return [self.start + i * HOUR for i in range(count)]


@dataclass(frozen=True)
class ClosePlan:
    """The hours a default run recomputes: the lookback (closed once) and older hours with late events
    (closed again, their `closed_at` moved, so new late events after it are seen by the next run)."""

    lookback: HourRange | None
    late_hours: tuple[datetime, ...] = ()

    def hours(self) -> list[datetime]:
        return sorted({*(self.lookback.hours() if self.lookback else []), *self.late_hours})


Hours = HourRange | ClosePlan


@dataclass(frozen=True)
class BatchResult:
    run_id: str
    hours: int
    windows: int
    inserted: int
    updated: int
    deleted: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def closed_hours(settings: Settings, as_of: datetime) -> HourRange:
    """The lookback hours that ended at least the close delay before `as_of` (what the hourly DAG runs)."""
    planned = plan_hours(settings, as_of)
    return HourRange(datetime.fromisoformat(planned["start"]), datetime.fromisoformat(planned["end"]))


def _lake_days(
    spark: SparkSession, settings: Settings, name: str, hours: list[datetime]
) -> Iterator[pa.Table]:
    """The hours' events in one lake dataset, one Arrow table per event date (bounds the driver's memory);
    nothing when the stream has not written the dataset yet."""
    try:
        events = spark.read.parquet(dataset_path(settings, name))
    except AnalysisException as error:
        if "PATH_NOT_FOUND" in str(error) or "Path does not exist" in str(error):
            return
        raise
    first, end = hours[0], hours[-1] + HOUR
    selected = events.where((F.col("event_ts") >= F.lit(first)) & (F.col("event_ts") < F.lit(end)))
    if len(hours) < int((end - first) / HOUR):  # gaps: keep only the planned hours
        planned = spark.createDataFrame([(hour,) for hour in hours], "_hour timestamp")
        selected = (
            selected.withColumn("_hour", F.date_trunc("hour", "event_ts"))
            .join(F.broadcast(planned), "_hour")
            .drop("_hour")
        )
    for day in sorted({hour.date() for hour in hours}):
        yield selected.where(F.col("event_date") == F.lit(day)).drop("event_date").toArrow()


# Session-temporary tables of a recompute: the lake's events as staged rows (as the stream stages a
# batch), and the facts that count, with raw's own keys so the landing decides as it does for raw.
_TABLES = (
    ("tmp_transactions", "raw.transactions including defaults", ""),
    (
        "tmp_items",
        "raw.transaction_items including defaults",
        ", kafka_partition integer, kafka_offset bigint",
    ),
    ("tmp_refunds", "raw.refunds including defaults", ""),
    ("counted_transactions", "raw.transactions including defaults including indexes", ""),
    ("counted_transaction_items", "raw.transaction_items including defaults including indexes", ""),
    ("counted_refunds", "raw.refunds including defaults including indexes", ""),
)


def create_staging_tables(cursor: psycopg.Cursor) -> None:
    """The session's temporary tables: staged lake rows (`tmp_*`) and the facts that count (`counted_*`)."""
    for name, like, extra in _TABLES:
        cursor.execute(f"create temp table {name} (like {like}{extra})")


def land_lake_facts(
    spark: SparkSession, settings: Settings, cursor: psycopg.Cursor, hours: list[datetime]
) -> None:
    """Stage the hours' lake events, then keep the facts that count (all days at once, in Kafka order)
    in the `counted_*` tables."""
    create_staging_tables(cursor)
    for baskets in _lake_days(spark, settings, "transactions", hours):
        copy_arrow(cursor, "tmp_transactions", basket_rows(baskets))
        copy_arrow(cursor, "tmp_items", item_rows(baskets, with_source=True))
    for refunds in _lake_days(spark, settings, "refunds", hours):
        copy_arrow(cursor, "tmp_refunds", refund_rows(refunds))
    cursor.execute(
        f"""with inserted as ({land_baskets("tmp_transactions", "counted_transactions")})
            {land_lines("tmp_items", "inserted", "counted_transaction_items")}"""
    )
    cursor.execute(land_refunds("tmp_refunds", "counted_refunds"))


def _check_lake_complete(
    cursor: psycopg.Cursor, settings: Settings, dataset: str, hours: list[datetime]
) -> None:
    """Refuse to close hours the lake holds fewer facts of than the raw table (the same validated events
    reach both): the stream's lake queries are behind, or RETAIL_LAKE_URI points elsewhere."""
    row = cursor.execute(
        f"""select (select count(*) from counted_{dataset}), count(*) from raw.{dataset}
            where event_ts >= %s and event_ts < %s and date_trunc('hour', event_ts, 'UTC') = any(%s)""",
        (hours[0], hours[-1] + HOUR, hours),
    ).fetchone()
    lake_events, raw_events = row if row else (0, 0)
    if lake_events < raw_events:
        raise BatchJobError(
            f"the lake has {lake_events} {dataset} events in {len(hours)} hours {hours[0]:%Y-%m-%d %H:%M}"
            f"..{hours[-1] + HOUR:%Y-%m-%d %H:%M} UTC but raw.{dataset} has {raw_events}: the stream's lake "
            f"queries are behind (retry later) or RETAIL_LAKE_URI ({dataset_path(settings, dataset)}) is not "
            "the stream's lake"
        )


def _publish(cursor: psycopg.Cursor, hours: Hours, run_id: str) -> tuple[int, int, int]:
    """Merge `tmp_batch_metrics` into the hours' windows and close the hours; (inserted, updated, deleted)."""
    hour_list = hours.hours()
    reclosed = list(hours.late_hours) if isinstance(hours, ClosePlan) else []
    metric_list = ", ".join(METRIC_COLUMNS)
    changed = " or ".join(f"m.{c} is distinct from t.{c}" for c in METRIC_COLUMNS)
    cursor.execute(
        """delete from batch.product_metrics_minute m
            where m.window_start >= %s and m.window_start < %s
              and date_trunc('hour', m.window_start, 'UTC') = any(%s)
              and not exists (select 1 from tmp_batch_metrics t
                              where t.window_start = m.window_start and t.product_id = m.product_id)""",
        (hour_list[0], hour_list[-1] + HOUR, hour_list),
    )
    deleted = cursor.rowcount
    cursor.execute(
        f"""update batch.product_metrics_minute m set
                {", ".join(f"{c} = t.{c}" for c in METRIC_COLUMNS)},
                batch_run_id = %s, computed_at = now()
            from tmp_batch_metrics t
            where t.window_start = m.window_start and t.product_id = m.product_id and ({changed})""",
        (run_id,),
    )
    updated = cursor.rowcount
    cursor.execute(
        f"""insert into batch.product_metrics_minute (window_start, product_id, {metric_list}, batch_run_id)
            select window_start, product_id, {metric_list}, %s from tmp_batch_metrics
            on conflict (window_start, product_id) do nothing""",
        (run_id,),
    )
    inserted = cursor.rowcount
    cursor.execute(
        """insert into batch.closed_hours (hour_start, batch_run_id)
           select hour, %s from unnest(%s::timestamptz[]) as hour
           on conflict (hour_start) do update
               set batch_run_id = excluded.batch_run_id, closed_at = now()
               where batch.closed_hours.hour_start = any(%s)""",
        (run_id, hour_list, reclosed),
    )
    return inserted, updated, deleted


def run(spark: SparkSession, settings: Settings, hours: Hours, run_id: str | None = None) -> BatchResult:
    """Recompute the hours from the lake; the merge and the closing are one transaction. The staging
    before it commits statement by statement (temporary tables), so no long transaction holds back the
    serving horizons while Spark reads the lake."""
    run_id = run_id or f"batch-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    hour_list = hours.hours()
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn, conn.cursor() as cursor:
        land_lake_facts(spark, settings, cursor, hour_list)
        for dataset in ("transactions", "refunds"):
            _check_lake_complete(cursor, settings, dataset, hour_list)
        cursor.execute(
            "create temp table tmp_batch_metrics as "
            + minute_metrics("counted_transaction_items", "counted_refunds")
        )
        windows = cursor.rowcount
        with conn.transaction():
            inserted, updated, deleted = _publish(cursor, hours, run_id)
    result = BatchResult(run_id, len(hour_list), windows, inserted, updated, deleted)
    log.info("batch %s: %s", run_id, result.as_dict())
    return result


def _hour(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def planned_hours(settings: Settings, as_of: datetime) -> ClosePlan:
    """What a run without --start/--end closes as of `as_of` (see `spark.hours.plan_closing`)."""
    with psycopg.connect(settings.writer_dsn) as conn:
        plan = plan_closing(settings, conn, as_of)
    lookback = None
    if plan.lookback_end > plan.lookback_start:
        lookback = HourRange(plan.lookback_start, plan.lookback_end)
    return ClosePlan(lookback, tuple(plan.late_hours))


def parse_args(argv: list[str], settings: Settings) -> tuple[Hours, str | None]:
    parser = argparse.ArgumentParser(prog="batch_job", description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=_hour, help="first hour to recompute (UTC, whole hour)")
    parser.add_argument("--end", type=_hour, help="hour after the last one to recompute")
    parser.add_argument("--as-of", type=_hour, help="close the lookback hours as of this time (default: now)")
    parser.add_argument("--run-id", help="identifier recorded with the rows (default: generated)")
    args = parser.parse_args(argv)
    if (args.start is None) != (args.end is None):
        parser.error("--start and --end go together")
    if args.start is not None:
        return HourRange(args.start, args.end), args.run_id
    return planned_hours(settings, args.as_of or datetime.now(UTC)), args.run_id


def recompute_hours(settings: Settings, hours: Hours, run_id: str | None = None) -> BatchResult:
    """One recompute in a Spark session of its own (started and stopped here)."""
    from spark.session import spark_session

    if not hours.hours():
        return BatchResult(run_id or "nothing-to-close", 0, 0, 0, 0, 0)

    spark = spark_session(settings, "retail-batch-recompute", ui=False, cores=settings.spark_batch_cores)
    try:
        return run(spark, settings, hours, run_id)
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    try:
        hours, run_id = parse_args(sys.argv[1:] if argv is None else argv, settings)
    except BatchJobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        result = recompute_hours(settings, hours, run_id)
    except BatchJobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    hour_list = hours.hours()
    span = f"{hour_list[0]:%Y-%m-%d %H:%M} .. {hour_list[-1] + HOUR:%Y-%m-%d %H:%M} UTC" if hour_list else "-"
    late = (
        f", {len(hours.late_hours)} of them older hours with late events"
        if isinstance(hours, ClosePlan)
        else ""
    )
    print(
        f"recomputed {result.hours} hours {span}{late}: {result.windows} windows, {result.inserted} "
        f"inserted, {result.updated} updated, {result.deleted} deleted"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
