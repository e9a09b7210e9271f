"""Exactly-once `foreachBatch` writers from the speed layer into PostgreSQL (README: Exactly-once protocol).

A micro-batch's rows and its ``(query_name, query_id, batch_id)`` row in ``ops.sink_commits`` commit in
ONE transaction, so a batch Spark replays after a crash finds its row and is skipped. One query per
topic writes all of that topic's outputs there: raw rows, dead letters, late-event counts, the topic's
watermark and the minute metrics (`spark.minute_metrics`, counted from the rows the raw insert added).
Before committing, the batch's valid events go to the lake spool (`spark.lake.LakeSpool`).

Each batch becomes Arrow on the driver once (``toArrow`` of `transformations.parsed_or_rejected`);
every output is derived from it with pyarrow (`spark.arrow_rows`) and streamed with ``COPY FROM STDIN``
(`copy_arrow`). ``RETAIL_STREAM_MAX_RECORDS_PER_BATCH`` bounds the driver memory this needs.
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
import pyarrow.csv as pacsv
from pyspark.sql import DataFrame, SparkSession

from retail.log_identity import record_landed
from spark.arrow_rows import (
    SplitBatch,
    basket_rows,
    item_rows,
    refund_rows,
    split_batch,
    without_records,
)
from spark.lake import LakeSpool
from spark.minute_metrics import (
    METRIC_COLUMNS,
    NO_LINES,
    NO_REFUNDS,
    land_baskets,
    land_lines,
    land_refunds,
    minute_metrics,
)
from spark.transformations import WATERMARK_DELAY_S, parsed_or_rejected
from spark.validation import EventType

log = logging.getLogger(__name__)

# Each topic has its own event-time watermark (ops.stream_watermarks row named after the topic): a
# refunds topic that lags the transactions topic in event time loses nothing to lateness.
_CSV = pacsv.WriteOptions(include_header=False)
# The UTC minute of an event: its 1-minute window's start.
_MINUTE = "date_trunc('minute', event_ts, 'UTC')"
# Rows that still count in the metrics, given `_advance_watermark`'s late cut-off.
_ON_TIME = f"(%(cutoff)s::timestamptz is null or {_MINUTE} + interval '1 minute' > %(cutoff)s::timestamptz)"


def copy_arrow(cursor: psycopg.Cursor, table: str, data: pa.Table) -> None:
    """COPY an Arrow table into `table` (same column names) through an in-memory CSV."""
    if data.num_rows == 0:
        return
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, _CSV)
    columns = ", ".join(data.column_names)
    with cursor.copy(f"copy {table} ({columns}) from stdin (format csv)") as copy:
        copy.write(buffer.getbuffer())


def _checkpoint_lines(spark: SparkSession, path: str) -> list[str]:
    """A checkpoint file's lines, read through Hadoop's FileSystem so remote checkpoints (s3a://,
    hdfs://) work as local ones do."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    stream = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(hadoop_path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        while (line := reader.readLine()) is not None:
            lines.append(line)
        return lines
    finally:
        stream.close()


def checkpoint_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The query id in `<checkpoint>/metadata`: stable across restarts, new with a new checkpoint."""
    return json.loads(_checkpoint_lines(spark, f"{checkpoint.rstrip('/')}/metadata")[0])["id"]


def batch_end_offset(spark: SparkSession, checkpoint: str, batch_id: int) -> dict:
    """The source offset batch `batch_id` ends at, from the offset log Spark writes before running it
    (`offsets/<id>`: a version line, the batch metadata, then the one source's offset)."""
    return json.loads(_checkpoint_lines(spark, f"{checkpoint.rstrip('/')}/offsets/{batch_id}")[-1])


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

    # (name, like table, extra columns) of the temporary tables the sink's batches COPY into: created
    # once per connection, emptied by each commit.
    temp_tables: tuple[tuple[str, str, str], ...] = ()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, connect_timeout=10)
            with self._conn.transaction():
                for name, like, extra in self.temp_tables:
                    columns = f"like {like} including defaults" + (f", {extra}" if extra else "")
                    self._conn.execute(f"create temp table {name} ({columns}) on commit delete rows")
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
                record_landed(cursor, batch_end_offset(spark, self.checkpoint, batch_id))
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


def _lock_watermark(cursor: psycopg.Cursor, topic: str) -> object | None:
    """Lock the topic's watermark for this transaction and return its late cut-off (None before the
    first batch): a row is late when its 1-minute window ended at or before it.

    Late = the event's window ended at or before (max event time that landed in earlier batches of this
    topic - 5 min), the rule Spark's windowed aggregation uses to drop input rows. The lock makes a
    replaced or restarted query's transactions on the topic's rows run one after the other."""
    row = cursor.execute(
        "select max_event_ts - make_interval(secs => %s) from ops.stream_watermarks"
        " where watermark_name = %s for update",
        (WATERMARK_DELAY_S, topic),
    ).fetchone()
    return row[0] if row is not None else None


def _late_counts(topic: str) -> str:
    """Statement over a CTE `inserted` (the rows a raw insert added, with event_ts): count its late rows
    per event minute into ops.late_events. Parameter: cutoff."""
    return f"""insert into ops.late_events (event_minute, topic, late_events, max_lateness)
        select {_MINUTE}, {_literal(topic)}, count(*),
               max(%(cutoff)s::timestamptz + make_interval(secs => {WATERMARK_DELAY_S}) - event_ts)
        from inserted
        where {_MINUTE} + interval '1 minute' <= %(cutoff)s::timestamptz
        group by 1
        on conflict (event_minute, topic) do update set
            late_events = ops.late_events.late_events + excluded.late_events,
            max_lateness = greatest(ops.late_events.max_lateness, excluded.max_lateness),
            updated_at = now()"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _advance_watermark(topic: str) -> str:
    """CTE body over `inserted` (rows this batch's insert added): raise the topic's max event time to
    the latest of them. Events refused or already present do not move it."""
    return f"""insert into ops.stream_watermarks (watermark_name, max_event_ts)
        select {_literal(topic)}, max(event_ts) from inserted having max(event_ts) is not null
        on conflict (watermark_name) do update set
            max_event_ts = greatest(ops.stream_watermarks.max_event_ts, excluded.max_event_ts),
            updated_at = now()"""


def _add_metrics(lines: str, refunds: str) -> str:
    """Add the minute metrics of `lines` and `refunds` to speed.product_metrics_minute's windows."""
    added = ", ".join(f"{c} = m.{c} + excluded.{c}" for c in METRIC_COLUMNS)
    columns = ", ".join(METRIC_COLUMNS)
    return f"""insert into speed.product_metrics_minute as m (window_start, product_id, {columns})
        select * from ({minute_metrics(lines, refunds)}) metrics order by 1, 2
        on conflict (window_start, product_id) do update set {added}, updated_at = now()"""


def _write_duplicates(
    cursor: psycopg.Cursor, topic: str, staged: str, table: str, key: str
) -> set[tuple[int, int]]:
    """Dead-letter the staged events whose `key` or event_id already landed with the other one different:
    such an event is not a redelivery (those are dropped silently) but a second event under a used id.
    The raw insert has skipped them (its unique keys), so nothing of them landed; returns their Kafka
    (partition, offset), which the lake must not get either."""
    reason = f"duplicate_{key}"
    rows = cursor.execute(
        f"""insert into ops.dead_letter (topic, kafka_partition, kafka_offset, reason, error)
            select {_literal(topic)}, s.kafka_partition, s.kafka_offset,
                case when by_key.event_id is not null then {_literal(reason)} else 'duplicate_event_id' end,
                case when by_key.event_id is not null
                    then format('{key} %%s already landed with event_id %%s', s.{key}, by_key.event_id)
                    else format('event_id %%s already landed with {key} %%s', s.event_id, by_event.{key})
                end
            from {staged} s
            left join {table} by_key on by_key.{key} = s.{key} and by_key.event_id <> s.event_id
            left join {table} by_event on by_event.event_id = s.event_id and by_event.{key} <> s.{key}
            where by_key.event_id is not null or by_event.event_id is not null
            on conflict do nothing
            returning kafka_partition, kafka_offset"""
    ).fetchall()
    return {(partition, offset) for partition, offset in rows}


@dataclass
class _RawSink(_CommittingSink):
    """One topic's query: its batch (validated messages) is parsed and converted in one Spark job, then
    every output is written."""

    topic: str = ""
    # Where the lake query of this topic picks up the valid events (None: not handed to a lake).
    spool: LakeSpool | None = None
    event_type: EventType = "transaction"

    def _split(self, batch_df: DataFrame) -> SplitBatch:
        return split_batch(parsed_or_rejected(batch_df, self.event_type).toArrow())

    def _hand_to_lake(self, batch_id: int, events: pa.Table) -> None:
        if self.spool is not None and events.num_rows:
            assert self._query_id is not None
            self.spool.write(self._query_id, batch_id, events)


@dataclass
class RawTransactionsSink(_RawSink):
    """Query raw_transactions: transactions topic -> raw.transactions + raw.transaction_items, the sales
    columns of speed.product_metrics_minute, dead letters, late counts, and the lake's hand-over.
    Exactly-once per micro-batch (see the module docstring)."""

    topic: str = "transactions"
    event_type: EventType = "transaction"
    temp_tables: tuple[tuple[str, str, str], ...] = (
        ("tmp_transactions", "raw.transactions", ""),
        ("tmp_items", "raw.transaction_items", "kafka_partition integer, kafka_offset bigint"),
    )

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        batch = self._split(batch_df)
        converted = time.perf_counter()
        baskets = basket_rows(batch.events)
        items = item_rows(batch.events, with_source=True)

        def write(cursor: psycopg.Cursor) -> BatchResult:
            cutoff = _lock_watermark(cursor, self.topic)
            copy_arrow(cursor, "tmp_transactions", baskets)
            copy_arrow(cursor, "tmp_items", items)
            # Lines only of the baskets this insert added (matched by Kafka record): a repeated event,
            # or another basket under a used transaction or event id, adds no line and no metric.
            cursor.execute(
                f"""with inserted as ({land_baskets("tmp_transactions")}),
                    late as ({_late_counts(self.topic)}),
                    watermark as ({_advance_watermark(self.topic)}),
                    lines as ({land_lines("tmp_items", "inserted")})
                    {_add_metrics("(select * from lines where " + _ON_TIME + ")", NO_REFUNDS)}""",
                {"cutoff": cutoff},
            )
            dead = _write_dead_letters(cursor, batch.dead_letters)
            duplicates = _write_duplicates(
                cursor, self.topic, "tmp_transactions", "raw.transactions", "transaction_id"
            )
            self._hand_to_lake(batch_id, without_records(batch.events, duplicates))
            return BatchResult(
                rows_written=baskets.num_rows + items.num_rows, dead_letters=dead + len(duplicates)
            )

        self.commit(batch_df.sparkSession, batch_id, write)
        log.debug(
            "%s batch %s: %s events, %s dead letters; spark %.2fs, lake + postgres %.2fs",
            self.query_name,
            batch_id,
            batch.events.num_rows,
            batch.dead_letters.num_rows,
            converted - started,
            time.perf_counter() - converted,
        )


@dataclass
class RawRefundsSink(_RawSink):
    """Query raw_refunds: refunds topic -> raw.refunds, the refund columns of
    speed.product_metrics_minute, dead letters, late counts, and the lake's hand-over. Exactly-once per
    micro-batch."""

    topic: str = "refunds"
    event_type: EventType = "refund"
    temp_tables: tuple[tuple[str, str, str], ...] = (("tmp_refunds", "raw.refunds", ""),)

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        batch = self._split(batch_df)
        refunds = refund_rows(batch.events)

        def write(cursor: psycopg.Cursor) -> BatchResult:
            cutoff = _lock_watermark(cursor, self.topic)
            copy_arrow(cursor, "tmp_refunds", refunds)
            # Late counts and metrics from the refunds this insert added: a repeated event adds nothing.
            cursor.execute(
                f"""with inserted as ({land_refunds("tmp_refunds")}),
                    late as ({_late_counts(self.topic)}),
                    watermark as ({_advance_watermark(self.topic)})
                    {_add_metrics(NO_LINES, "(select * from inserted where " + _ON_TIME + ")")}""",
                {"cutoff": cutoff},
            )
            dead = _write_dead_letters(cursor, batch.dead_letters)
            duplicates = _write_duplicates(cursor, self.topic, "tmp_refunds", "raw.refunds", "refund_id")
            self._hand_to_lake(batch_id, without_records(batch.events, duplicates))
            return BatchResult(rows_written=refunds.num_rows, dead_letters=dead + len(duplicates))

        self.commit(batch_df.sparkSession, batch_id, write)
