"""The speed layer: Kafka -> Spark Structured Streaming -> PostgreSQL and the lake.

    retail stream                       # or: python -m spark.streaming_job
    retail stream --reset-checkpoints   # after a broker reset or data loss

Four queries, each with its own checkpoint under `checkpoint(settings, query_name)`: `raw_transactions`
and `raw_refunds` read and validate each message of their topic once and write all of its Postgres
outputs exactly once (`spark.postgres_sink`), handing valid events to `lake_transactions` and
`lake_refunds` (`spark.lake`). `--reset-checkpoints` moves only the raw queries' checkpoints aside, so
they re-read every topic from its earliest offset. The queries and their outputs: README, Speed layer.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from retail.settings import Settings, get_settings
from retail.stream_health import failure_message, recent_failures, record_failure
from retail.topics import ensure_topics
from spark.drain import LogEndWatcher
from spark.kafka_source import validated_stream, warm_up_workers
from spark.lake import LakeSpool, spool_path, start_lake_query
from spark.postgres_sink import RawRefundsSink, RawTransactionsSink
from spark.progress_listener import ProgressRecorder
from spark.session import spark_session
from spark.validation import PostgresDimensions

log = logging.getLogger("spark.streaming_job")

RAW_TRANSACTIONS = "raw_transactions"
RAW_REFUNDS = "raw_refunds"
LAKE_TRANSACTIONS = "lake_transactions"
LAKE_REFUNDS = "lake_refunds"
QUERY_NAMES = (RAW_TRANSACTIONS, RAW_REFUNDS, LAKE_TRANSACTIONS, LAKE_REFUNDS)
# The metrics query of the five-query layout: its checkpoint is a sign of a layout this job cannot resume.
_RETIRED_QUERY = "product_metrics_minute"


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


# Spark gives a Python source's planner process a fixed 10 s to connect back (not configurable); on a
# loaded machine it can miss that even with the queries started one after another.
_PLANNER_MISSED = "Python worker failed to connect back"
_START_ATTEMPTS = 5


def _start_raw_query(spark: SparkSession, writer) -> StreamingQuery:
    """Start a Kafka-reading query, again if only its planner's connect-back timed out: that is the
    machine's load, not the query's fault, and needs no restart of the job (nor its failure count)."""
    query = _await_initialized(writer.start())
    attempt = 1
    while not query.isActive and attempt < _START_ATTEMPTS and _PLANNER_MISSED in str(query.exception()):
        log.warning("query %s: its planner missed the connect-back; starting it again", query.name)
        # The failed start must not end `awaitAnyTermination` in `run`.
        spark.streams.resetTerminated()
        time.sleep(2.0 * attempt)
        attempt += 1
        query = _await_initialized(writer.start())
    return query


def _trigger(writer, seconds: float):
    return writer.trigger(processingTime=f"{seconds} seconds") if seconds > 0 else writer


def _check_layout(settings: Settings) -> None:
    """Refuse checkpoints of the five-query layout: its lake queries read Kafka, these read the spool,
    and a lake query restarted on a fresh checkpoint would skip batches its sink log already lists."""
    checkpoints = _local_path(settings.checkpoint_dir)
    if checkpoints is not None and (checkpoints / _RETIRED_QUERY).exists():
        raise StreamFailed(
            f"the checkpoints in {checkpoints} are from the five-query speed layer (a separate "
            f"{_RETIRED_QUERY} query); run `retail stream --reset-checkpoints` once to start the "
            "four-query layout (the raw tables keep what they hold, the topics are read again)"
        )


def start_queries(
    spark: SparkSession, settings: Settings, names: tuple[str, ...] = QUERY_NAMES
) -> list[StreamingQuery]:
    """Start the speed layer's queries (all by default) and return them, running."""
    _check_layout(settings)
    dimensions = PostgresDimensions(settings.writer_dsn, settings.stream_dimension_refresh_s)
    trigger_s = settings.stream_trigger_s
    queries: list[StreamingQuery] = []
    if settings.stream_source == "python" and {RAW_TRANSACTIONS, RAW_REFUNDS} & set(names):
        warm_up_workers(spark, settings)
    raw_queries = (
        (RAW_TRANSACTIONS, RawTransactionsSink, settings.transactions_topic, "transactions"),
        (RAW_REFUNDS, RawRefundsSink, settings.refunds_topic, "refunds"),
    )
    for name, sink_class, topic, dataset in raw_queries:
        if name not in names:
            continue
        sink = sink_class(
            settings.writer_dsn,
            name,
            checkpoint=checkpoint(settings, name),
            topic=topic,
            # Handed over even when the lake query is not running now: it picks the files up later.
            spool=LakeSpool(spool_path(settings, dataset)),
        )
        writer = (
            validated_stream(spark, settings, topic, sink.event_type, dimensions)
            .writeStream.queryName(name)
            .foreachBatch(sink)
            .option("checkpointLocation", checkpoint(settings, name))
        )
        queries.append(_start_raw_query(spark, _trigger(writer, trigger_s)))
    for name, dataset in ((LAKE_TRANSACTIONS, "transactions"), (LAKE_REFUNDS, "refunds")):
        if name in names:
            lake_query = start_lake_query(
                spark, settings, dataset, name, checkpoint(settings, name), settings.stream_lake_trigger_s
            )
            queries.append(_await_initialized(lake_query))
    return queries


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return Path(parts.path if parts.scheme else uri)
    return None


def reset_checkpoints(settings: Settings) -> Path | None:
    """Move the Kafka-reading queries' checkpoints aside; returns the backup folder (None if there was
    nothing to move). Local paths only: move remote ones with your storage's tools.

    The lake queries keep their checkpoints and the lake keeps its `_spark_metadata` log: they read the
    raw queries' spool, not Kafka, and moving the log aside would hide every earlier lake file from the
    batch layer."""
    checkpoints = _local_path(settings.checkpoint_dir)
    if checkpoints is None:
        raise StreamFailed(
            f"checkpoints at {settings.checkpoint_dir} are not local: move the {RAW_TRANSACTIONS} and "
            f"{RAW_REFUNDS} checkpoints aside with your storage's tools"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = checkpoints.with_name(f"{checkpoints.name}.reset-{stamp}")
    moved = False
    for name in (RAW_TRANSACTIONS, RAW_REFUNDS, _RETIRED_QUERY):
        if (checkpoints / name).exists():
            backup.mkdir(parents=True, exist_ok=True)
            shutil.move(checkpoints / name, backup / name)
            moved = True
    return backup if moved else None


class StopRequest:
    """SIGTERM (supervisord, `retail down`) or SIGINT (Ctrl-C): a requested stop, which ends with exit 0.

    Once the queries run, the handler only records the request and `run` polls for it: an exception
    raised from a handler lands inside the py4j call the main thread is blocked in, breaks its gateway
    connection, and the queries' stop then failed (exit 1). Before that, while the session and the queries
    start, it raises KeyboardInterrupt, which `main` also treats as a requested stop."""

    def __init__(self) -> None:
        self.requested = False
        self._deferred = False

    def install(self) -> StopRequest:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    def defer(self) -> None:
        self._deferred = True

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if not self._deferred:
            raise KeyboardInterrupt(signal.Signals(signum).name)


# How often `run` looks for a requested stop while the queries run.
_STOP_POLL_S = 1.0
# How long a requested stop waits for running batches to end (supervisord kills after 20 s).
_STOP_GRACE_S = 6.0


def stop_between_batches(queries: list[StreamingQuery], grace_s: float = _STOP_GRACE_S) -> None:
    """Stop each query once its running batch has ended, if it ends within `grace_s` (one deadline).

    Stopping a query mid-batch is safe (the batch is replayed once after the restart), but Spark logs its
    interrupted writes as errors; raw queries go first, so the lake queries see their last hand-over."""
    deadline = time.monotonic() + grace_s
    for query in queries:
        while time.monotonic() < deadline and query.isActive and query.status["isTriggerActive"]:
            time.sleep(0.1)
        if query.isActive:
            query.stop()


def run(spark: SparkSession, settings: Settings, stop: StopRequest) -> None:
    """Run every query until one fails (raises StreamFailed) or a stop is requested; then stop them all."""
    # A restarted memory-only broker has no topics until someone creates them: the stream does, as
    # every producer and consumer of the platform does (idempotent).
    ensure_topics(settings)
    topics = {RAW_TRANSACTIONS: settings.transactions_topic, RAW_REFUNDS: settings.refunds_topic}
    spark.streams.addListener(ProgressRecorder(settings.writer_dsn, topics))
    queries = start_queries(spark, settings)
    watcher = LogEndWatcher(settings).start() if settings.stream_source == "python" else None
    log.info("speed layer running: %s", ", ".join(q.name for q in queries))
    stop.defer()
    try:
        while not stop.requested and not spark.streams.awaitAnyTermination(_STOP_POLL_S):
            pass
    except StreamingQueryException as error:
        raise StreamFailed(failure_message(error)) from None
    finally:
        if stop.requested:
            log.info("stopping on request: stopping the queries")
        if watcher is not None:
            watcher.stop()
        # A batch in flight finishes or is abandoned: its commit in ops.sink_commits makes a replay of
        # it after the restart a no-op (exactly once either way).
        stop_between_batches(queries, _STOP_GRACE_S if stop.requested else 0.0)


# Exit status after too many failures: supervisord treats it as expected and does not restart.
GAVE_UP = 3


def _failures(settings: Settings) -> int:
    try:
        return recent_failures(settings.writer_dsn, settings.stream_failure_window_s)
    except psycopg.Error as error:  # the database is away: the start itself will say so
        log.warning("could not read recent failures: %s", error)
        return 0


def _fail(settings: Settings, reason: str) -> int:
    """Record the failure; after RETAIL_STREAM_MAX_FAILURES within the window, give up visibly."""
    gave_up = _failures(settings) + 1 >= settings.stream_max_failures
    try:
        record_failure(settings.writer_dsn, reason, gave_up=gave_up)
    except psycopg.Error as error:
        log.warning("could not record the failure: %s", error)
    print(f"error: {reason}", file=sys.stderr)
    if gave_up:
        print(
            f"error: {settings.stream_max_failures} failures within {settings.stream_failure_window_s:.0f}s: "
            "not restarting (see `retail status`)",
            file=sys.stderr,
        )
    return GAVE_UP if gave_up else 1


def main(settings: Settings | None = None) -> int:
    """Entry point of `retail stream` and `python -m spark.streaming_job`; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or get_settings()
    stop = StopRequest().install()
    try:
        failures = _failures(settings)
        if failures:
            # Back off before starting again: 2, 4, 8 ... seconds after 1, 2, 3 ... recent failures.
            delay = min(2.0**failures, 60.0)
            log.warning("%s recent failure(s): starting in %.0f s", failures, delay)
            time.sleep(delay)
        spark = spark_session(settings)
    except KeyboardInterrupt:
        log.info("stopped on request before the queries started")
        return 0
    stop.install()  # the SparkContext took SIGINT over
    spark.sparkContext.setLogLevel("WARN")
    try:
        run(spark, settings, stop)
    except StreamFailed as error:
        return _fail(settings, str(error))
    except KeyboardInterrupt:
        log.info("stopped on request while the queries started")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
