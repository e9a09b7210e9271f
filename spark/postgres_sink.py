"""Exactly-once `foreachBatch` writers from the speed layer into PostgreSQL.

Protocol (every sink): a micro-batch's rows and its ``(query_name, query_id, batch_id)`` row in
``ops.sink_commits`` are written in ONE Postgres transaction. A batch Spark replays after a crash (it
re-reads the same Kafka offsets from its checkpoint) finds its commit row and is skipped; a batch whose
transaction never committed left nothing behind and is written in full. ``query_id`` is the checkpoint's
query id, so a fresh checkpoint (whose batch ids restart at 0) is never mistaken for an old one.

Bulk path: each batch becomes Arrow on the driver (``toArrow``, columnar, no Python row objects), is
written as CSV with pyarrow into memory and streamed with ``COPY FROM STDIN`` into temporary tables, then
``insert ... select ... on conflict do nothing`` moves it into the raw tables, so duplicate event ids
(which the producer sends on purpose) land once. Batches are bounded by
``RETAIL_STREAM_MAX_RECORDS_PER_BATCH``, which bounds the driver memory this needs.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyspark.sql import DataFrame, SparkSession

from spark.transformations import (
    WATERMARK_DELAY_S,
    dead_letters,
    explode_items,
    parse_refunds,
    parse_transactions,
    refund_rows,
    transaction_rows,
    valid_messages,
    validate_messages,
)
from spark.validation import Dimensions

log = logging.getLogger(__name__)

# All Kafka topics share one event-time watermark, as the metrics query's union of both topics does.
WATERMARK_NAME = "events"
_CSV = pacsv.WriteOptions(include_header=False)


def copy_arrow(cursor: psycopg.Cursor, table: str, data: pa.Table) -> None:
    """COPY an Arrow table into `table` (same column names) through an in-memory CSV."""
    if data.num_rows == 0:
        return
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, _CSV)
    columns = ", ".join(data.column_names)
    with cursor.copy(f"copy {table} ({columns}) from stdin (format csv)") as copy:
        copy.write(buffer.getbuffer())


def checkpoint_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The query id in `<checkpoint>/metadata`: stable across restarts, new with a new checkpoint.

    Read through Hadoop's FileSystem so remote checkpoints (s3a://, hdfs://) work as local ones do."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/metadata")
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(path)
    try:
        first_line = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8")).readLine()
    finally:
        stream.close()
    return json.loads(first_line)["id"]


@dataclass
class BatchResult:
    rows_written: int = 0
    dead_letters: int = 0


@dataclass
class _CommittingSink:
    """Runs one batch's writes and its commit row in one transaction; skips committed batches."""

    dsn: str = field(repr=False)
    query_name: str
    # The query's checkpoint location: its query id disambiguates batch ids (see module docstring).
    checkpoint: str
    _conn: psycopg.Connection | None = field(default=None, init=False, repr=False)
    _query_id: str | None = field(default=None, init=False)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, connect_timeout=10)
        return self._conn

    def commit(
        self, spark: SparkSession, batch_id: int, write: Callable[[psycopg.Cursor], BatchResult]
    ) -> BatchResult | None:
        """Apply `write` and record the batch, atomically; None when the batch was already committed."""
        if self._query_id is None:
            self._query_id = checkpoint_query_id(spark, self.checkpoint)
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cursor:
                done = cursor.execute(
                    "select 1 from ops.sink_commits"
                    " where query_name = %s and query_id = %s and batch_id = %s",
                    (self.query_name, self._query_id, batch_id),
                ).fetchone()
                if done:
                    return None
                result = write(cursor)
                cursor.execute(
                    "insert into ops.sink_commits"
                    " (query_name, query_id, batch_id, rows_written, dead_letters)"
                    " values (%s, %s, %s, %s, %s)",
                    (self.query_name, self._query_id, batch_id, result.rows_written, result.dead_letters),
                )
            return result
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _write_dead_letters(cursor: psycopg.Cursor, rows: pa.Table) -> int:
    """Dead letters are few and carry binary payloads: row-wise COPY is the simple, safe path."""
    if rows.num_rows == 0:
        return 0
    cursor.execute(
        "create temp table tmp_dead_letter (topic text, kafka_partition integer, kafka_offset bigint, "
        "reason text, error text, payload bytea) on commit drop"
    )
    with cursor.copy(
        "copy tmp_dead_letter (topic, kafka_partition, kafka_offset, reason, error, payload) from stdin"
    ) as copy:
        for row in rows.to_pylist():
            copy.write_row(
                (
                    row["topic"],
                    row["kafka_partition"],
                    row["kafka_offset"],
                    row["reason"],
                    row["error"],
                    row["payload"],
                )
            )
    cursor.execute(
        "insert into ops.dead_letter (topic, kafka_partition, kafka_offset, reason, error, payload) "
        "select * from tmp_dead_letter on conflict do nothing"
    )
    return rows.num_rows


def _count_late_and_advance(
    cursor: psycopg.Cursor, topic: str, inserted_table: str, batch_max: object
) -> None:
    """Count this batch's newly inserted late events per minute, then advance the watermark.

    Late = the event's 1-minute window ended at or before (max event time of earlier batches - 5 min),
    the rule Spark's windowed aggregation uses to drop input rows."""
    row = cursor.execute(
        "select max_event_ts from ops.stream_watermarks where watermark_name = %s for update",
        (WATERMARK_NAME,),
    ).fetchone()
    if row is not None:
        cursor.execute(
            f"""insert into ops.late_events (event_minute, topic, late_events, max_lateness)
                select date_trunc('minute', event_ts), %(topic)s, count(*), max(%(max)s - event_ts)
                from {inserted_table}
                where date_trunc('minute', event_ts) + interval '1 minute'
                      <= %(max)s - make_interval(secs => %(delay)s)
                group by 1
                on conflict (event_minute, topic) do update set
                    late_events = ops.late_events.late_events + excluded.late_events,
                    max_lateness = greatest(ops.late_events.max_lateness, excluded.max_lateness),
                    updated_at = now()""",
            {"topic": topic, "max": row[0], "delay": WATERMARK_DELAY_S},
        )
    if batch_max is not None:
        cursor.execute(
            """insert into ops.stream_watermarks (watermark_name, max_event_ts) values (%s, %s)
               on conflict (watermark_name) do update set
                   max_event_ts = greatest(ops.stream_watermarks.max_event_ts, excluded.max_event_ts),
                   updated_at = now()""",
            (WATERMARK_NAME, batch_max),
        )


@dataclass
class RawTransactionsSink(_CommittingSink):
    """Query 1: transactions topic -> raw.transactions + raw.transaction_items (+ dead letters, late
    counts). Exactly-once per micro-batch (see the module docstring)."""

    dimensions: Dimensions | None = None
    topic: str = "transactions"

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        assert self.dimensions is not None
        started = time.perf_counter()
        validated = validate_messages(batch_df, "transaction", self.dimensions).persist()
        try:
            transactions = parse_transactions(valid_messages(validated))
            baskets = transaction_rows(transactions).toArrow()
            t1 = time.perf_counter()
            items = explode_items(transactions).drop("is_first_product_line").toArrow()
            t2 = time.perf_counter()
            rejected = dead_letters(validated).toArrow()
            t3 = time.perf_counter()
        finally:
            validated.unpersist()
        log.debug(
            "%s batch %s: read+validate+baskets %.2fs, items %.2fs, dead letters %.2fs",
            self.query_name,
            batch_id,
            t1 - started,
            t2 - t1,
            t3 - t2,
        )
        batch_max = pc.max(baskets["event_ts"]).as_py() if baskets.num_rows else None

        def write(cursor: psycopg.Cursor) -> BatchResult:
            cursor.execute(
                "create temp table tmp_transactions (like raw.transactions including defaults)"
                " on commit drop;"
                "create temp table tmp_items (like raw.transaction_items including defaults) on commit drop;"
                "create temp table tmp_inserted (event_ts timestamptz) on commit drop"
            )
            copy_arrow(cursor, "tmp_transactions", baskets)
            copy_arrow(cursor, "tmp_items", items)
            cursor.execute(
                """with inserted as (
                       insert into raw.transactions (transaction_id, event_id, event_ts, store_id,
                           customer_id, channel, payment_method, line_count, schema_version,
                           kafka_partition, kafka_offset)
                       select transaction_id, event_id, event_ts, store_id, customer_id, channel,
                           payment_method, line_count, schema_version, kafka_partition, kafka_offset
                       from tmp_transactions on conflict do nothing
                       returning transaction_id, event_ts)
                   insert into tmp_inserted select event_ts from inserted"""
            )
            cursor.execute(
                """insert into raw.transaction_items (transaction_id, line_number, product_id, quantity,
                       unit_price, discount, event_ts, store_id)
                   select transaction_id, line_number, product_id, quantity, unit_price, discount, event_ts,
                       store_id
                   from tmp_items on conflict do nothing"""
            )
            _count_late_and_advance(cursor, self.topic, "tmp_inserted", batch_max)
            dead = _write_dead_letters(cursor, rejected)
            return BatchResult(rows_written=baskets.num_rows + items.num_rows, dead_letters=dead)

        t4 = time.perf_counter()
        self.commit(batch_df.sparkSession, batch_id, write)
        log.debug("%s batch %s: postgres %.2fs", self.query_name, batch_id, time.perf_counter() - t4)


@dataclass
class RawRefundsSink(_CommittingSink):
    """Query 2: refunds topic -> raw.refunds (+ dead letters, late counts). Exactly-once per micro-batch."""

    dimensions: Dimensions | None = None
    topic: str = "refunds"

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        assert self.dimensions is not None
        validated = validate_messages(batch_df, "refund", self.dimensions).persist()
        try:
            refunds = refund_rows(parse_refunds(valid_messages(validated))).toArrow()
            rejected = dead_letters(validated).toArrow()
        finally:
            validated.unpersist()
        batch_max = pc.max(refunds["event_ts"]).as_py() if refunds.num_rows else None

        def write(cursor: psycopg.Cursor) -> BatchResult:
            cursor.execute(
                "create temp table tmp_refunds (like raw.refunds including defaults) on commit drop;"
                "create temp table tmp_inserted (event_ts timestamptz) on commit drop"
            )
            copy_arrow(cursor, "tmp_refunds", refunds)
            cursor.execute(
                """with inserted as (
                       insert into raw.refunds (refund_id, event_id, transaction_id, product_id, quantity,
                           amount, reason, event_ts, schema_version, kafka_partition, kafka_offset)
                       select refund_id, event_id, transaction_id, product_id, quantity, amount, reason,
                           event_ts, schema_version, kafka_partition, kafka_offset
                       from tmp_refunds on conflict do nothing
                       returning event_ts)
                   insert into tmp_inserted select event_ts from inserted"""
            )
            _count_late_and_advance(cursor, self.topic, "tmp_inserted", batch_max)
            dead = _write_dead_letters(cursor, rejected)
            return BatchResult(rows_written=refunds.num_rows, dead_letters=dead)

        self.commit(batch_df.sparkSession, batch_id, write)


@dataclass
class MinuteMetricsSink(_CommittingSink):
    """Query 3: updated windows (update output mode) -> speed.product_metrics_minute, upserted with the
    new aggregate values. Exactly-once per micro-batch; the upsert is idempotent on its own as well."""

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        metrics = batch_df.toArrow()

        def write(cursor: psycopg.Cursor) -> BatchResult:
            cursor.execute(
                "create temp table tmp_metrics (like speed.product_metrics_minute including defaults)"
                " on commit drop"
            )
            copy_arrow(cursor, "tmp_metrics", metrics)
            cursor.execute(
                """insert into speed.product_metrics_minute (window_start, product_id, units, gross_revenue,
                       discount, transactions, refunds, refund_amount)
                   select window_start, product_id, units, gross_revenue, discount, transactions, refunds,
                       refund_amount
                   from tmp_metrics
                   on conflict (window_start, product_id) do update set
                       units = excluded.units, gross_revenue = excluded.gross_revenue,
                       discount = excluded.discount, transactions = excluded.transactions,
                       refunds = excluded.refunds, refund_amount = excluded.refund_amount,
                       updated_at = now()"""
            )
            return BatchResult(rows_written=metrics.num_rows)

        self.commit(batch_df.sparkSession, batch_id, write)
