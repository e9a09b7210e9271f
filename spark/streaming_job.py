"""The speed layer: Kafka -> Spark Structured Streaming -> PostgreSQL and the lake.

    retail stream                       # or: python -m spark.streaming_job
    retail stream --reset-checkpoints   # after a broker reset / data loss, see below

Five queries, each with its own checkpoint under `<checkpoint_dir>/<query>` (settings.checkpoint_dir,
default `<state_dir>/checkpoints`):

1. raw_transactions        transactions topic -> raw.transactions, raw.transaction_items
2. raw_refunds             refunds topic -> raw.refunds
3. product_metrics_minute  both topics -> speed.product_metrics_minute (1-minute windows, 5-minute
                           watermark, update mode, upserted)
4. lake_transactions,      every valid event -> Parquet under settings.lake, partitioned by event date
   lake_refunds

Queries 1 and 2 also write ops.dead_letter (invalid messages) and ops.late_events (events beyond the
watermark, which query 3 drops but 1, 2 and 4 keep). All Postgres writes are exactly-once
(`spark.postgres_sink`); progress goes to ops.stream_progress (`spark.progress_listener`).

If the broker lost data or was reset, a query stops with `SourceDataLoss` naming topic, partition and
offsets. `--reset-checkpoints` moves the checkpoints (and the lake's file-sink logs) aside into a
`<checkpoint_dir>.reset-<UTC time>` folder, so the next start re-reads every topic from its earliest offset;
the raw tables ignore events they already hold (unique event_id).
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from retail.settings import Settings, get_settings
from spark.kafka_source import kafka_stream
from spark.lake import DATASETS, dataset_path, start_lake_query
from spark.postgres_sink import MinuteMetricsSink, RawRefundsSink, RawTransactionsSink
from spark.progress_listener import ProgressRecorder
from spark.session import spark_session
from spark.transformations import (
    deduplicated,
    explode_items,
    metric_contributions,
    minute_metrics,
    parse_refunds,
    parse_transactions,
    valid_messages,
    validate_messages,
)
from spark.validation import PostgresDimensions

log = logging.getLogger("spark.streaming_job")

RAW_TRANSACTIONS = "raw_transactions"
RAW_REFUNDS = "raw_refunds"
PRODUCT_METRICS = "product_metrics_minute"
LAKE_TRANSACTIONS = "lake_transactions"
LAKE_REFUNDS = "lake_refunds"
QUERY_NAMES = (RAW_TRANSACTIONS, RAW_REFUNDS, PRODUCT_METRICS, LAKE_TRANSACTIONS, LAKE_REFUNDS)


class StreamFailed(RuntimeError):
    """A query stopped with an error; the message is the cause a user can act on."""


def checkpoint(settings: Settings, query_name: str) -> str:
    return f"{settings.checkpoint_dir.rstrip('/')}/{query_name}"


def _await_initialized(query: StreamingQuery, timeout_s: float = 180.0) -> StreamingQuery:
    """Wait until the query has started its sources before the next one starts.

    Each Python Data Source starts a planner process that must connect back to the JVM within a fixed
    10 s; starting all queries at once on a busy 2-core machine made some of them miss it."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status["message"].startswith("Initializing"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return query


def _trigger(writer, seconds: float):
    return writer.trigger(processingTime=f"{seconds} seconds") if seconds > 0 else writer


def start_queries(
    spark: SparkSession, settings: Settings, names: tuple[str, ...] = QUERY_NAMES
) -> list[StreamingQuery]:
    """Start the speed layer's queries (all by default) and return them, running."""
    dimensions = PostgresDimensions(settings.writer_dsn, settings.stream_dimension_refresh_s)
    trigger_s = settings.stream_trigger_s

    def validated(topic: str, event_type: str):
        return valid_messages(validate_messages(kafka_stream(spark, settings, topic), event_type, dimensions))

    queries: list[StreamingQuery] = []
    if RAW_TRANSACTIONS in names:
        sink = RawTransactionsSink(
            settings.writer_dsn,
            RAW_TRANSACTIONS,
            dimensions=dimensions,
            topic=settings.transactions_topic,
            checkpoint=checkpoint(settings, RAW_TRANSACTIONS),
        )
        writer = (
            kafka_stream(spark, settings, settings.transactions_topic)
            .writeStream.queryName(RAW_TRANSACTIONS)
            .foreachBatch(sink)
            .option("checkpointLocation", checkpoint(settings, RAW_TRANSACTIONS))
        )
        queries.append(_await_initialized(_trigger(writer, trigger_s).start()))
    if RAW_REFUNDS in names:
        sink = RawRefundsSink(
            settings.writer_dsn,
            RAW_REFUNDS,
            checkpoint=checkpoint(settings, RAW_REFUNDS),
            dimensions=dimensions,
            topic=settings.refunds_topic,
        )
        writer = (
            kafka_stream(spark, settings, settings.refunds_topic)
            .writeStream.queryName(RAW_REFUNDS)
            .foreachBatch(sink)
            .option("checkpointLocation", checkpoint(settings, RAW_REFUNDS))
        )
        queries.append(_await_initialized(_trigger(writer, trigger_s).start()))
    if PRODUCT_METRICS in names:
        # The producer may repeat an event: drop repeats (by event_id, for as long as the watermark
        # keeps a window open) so the metrics count each event once, as the raw tables do.
        transactions = deduplicated(parse_transactions(validated(settings.transactions_topic, "transaction")))
        refunds = deduplicated(parse_refunds(validated(settings.refunds_topic, "refund")))
        metrics = minute_metrics(metric_contributions(explode_items(transactions), refunds))
        writer = (
            metrics.writeStream.queryName(PRODUCT_METRICS)
            .outputMode("update")
            .foreachBatch(
                MinuteMetricsSink(
                    settings.writer_dsn, PRODUCT_METRICS, checkpoint=checkpoint(settings, PRODUCT_METRICS)
                )
            )
            .option("checkpointLocation", checkpoint(settings, PRODUCT_METRICS))
        )
        queries.append(_await_initialized(_trigger(writer, trigger_s).start()))
    if LAKE_TRANSACTIONS in names:
        events = parse_transactions(validated(settings.transactions_topic, "transaction"))
        queries.append(
            _await_initialized(
                start_lake_query(
                    events,
                    settings,
                    "transactions",
                    LAKE_TRANSACTIONS,
                    checkpoint(settings, LAKE_TRANSACTIONS),
                    settings.stream_lake_trigger_s,
                )
            )
        )
    if LAKE_REFUNDS in names:
        events = parse_refunds(validated(settings.refunds_topic, "refund"))
        queries.append(
            _await_initialized(
                start_lake_query(
                    events,
                    settings,
                    "refunds",
                    LAKE_REFUNDS,
                    checkpoint(settings, LAKE_REFUNDS),
                    settings.stream_lake_trigger_s,
                )
            )
        )
    return queries


def failure_message(error: BaseException) -> str:
    """The actionable line of a query failure (a SourceDataLoss message when that is the cause)."""
    text = str(error)
    match = re.search(r"SourceDataLoss: [^\n]*", text)
    if match:
        return match.group(0)
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return Path(parts.path if parts.scheme else uri)
    return None


def reset_checkpoints(settings: Settings) -> Path | None:
    """Move the checkpoints and the lake's file-sink logs aside; returns the backup folder (None if
    there was nothing to move). Local paths only: move remote ones with your storage's tools."""
    checkpoints = _local_path(settings.checkpoint_dir)
    if checkpoints is None:
        raise StreamFailed(
            f"checkpoints at {settings.checkpoint_dir} are not local: move them aside with your storage's "
            "tools (and each lake dataset's _spark_metadata folder)"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = checkpoints.with_name(f"{checkpoints.name}.reset-{stamp}")
    moved = False
    if checkpoints.exists():
        shutil.move(checkpoints, backup)
        moved = True
    for dataset in DATASETS:
        lake = _local_path(dataset_path(settings, dataset))
        metadata = lake / "_spark_metadata" if lake else None
        if metadata is not None and metadata.exists():
            backup.mkdir(parents=True, exist_ok=True)
            shutil.move(metadata, backup / f"lake_{dataset}_spark_metadata")
            moved = True
    return backup if moved else None


def run(spark: SparkSession, settings: Settings) -> None:
    """Run every query until one fails (raises StreamFailed) or the process is stopped."""
    spark.streams.addListener(ProgressRecorder(settings.writer_dsn))
    queries = start_queries(spark, settings)
    log.info("speed layer running: %s", ", ".join(q.name for q in queries))
    try:
        spark.streams.awaitAnyTermination()
    except StreamingQueryException as error:
        raise StreamFailed(failure_message(error)) from None
    finally:
        for query in queries:
            if query.isActive:
                query.stop()


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(settings: Settings | None = None) -> int:
    """Entry point of `retail stream` and `python -m spark.streaming_job`; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or get_settings()
    # supervisord stops the service with SIGTERM: leave through `run`'s finally, stopping the queries.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    spark = spark_session(settings)
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, settings)
    except StreamFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("stopping on request")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
