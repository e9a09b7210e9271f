"""The streaming job as a supervised service of `retail up`.

Healthy when the job's Spark UI answers its REST API (and, on the local cluster, the master lists its
application with executors).
Queries that later fail stop the process (exit status 1, cause in `retail logs stream`), and supervisord
restarts it; the checkpoints make the restart continue exactly where the last committed batch ended.
The job backs off after failures and, after too many, exits with status 3, which is not restarted;
`health` (ops tables, `retail.stream_health`) is what `retail status` adds to the process state.
"""

from __future__ import annotations

import sys
from datetime import datetime

import psycopg
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from retail.log_identity import arrivals_at, broker_log_ends
from retail.record_probe import probe_consumer
from retail.settings import PROJECT_ROOT, Settings
from retail.stream_health import Arrivals, StreamHealth, stream_health
from retail.topics import kafka_security
from spark.session import STREAM_APP
from stack import spark_cluster
from stack.airflow import retail_environment
from stack.service import Service, http_body


def health_check(settings: Settings) -> None:
    """The driver's UI answers; on the local cluster, the master also lists the application with its
    executors (the UI answers before the application has registered)."""
    http_body(f"http://{settings.host}:{settings.spark_ui_port}/api/v1/applications")
    if settings.spark_cluster:
        problem = spark_cluster.application_problem(spark_cluster.master_state(settings), STREAM_APP)
        if problem:
            raise RuntimeError(problem[1])


def service(settings: Settings) -> Service:
    return Service(
        name="stream",
        command=[sys.executable, "-m", "spark.streaming_job"],
        health_check=lambda: health_check(settings),
        port=settings.spark_ui_port,
        port_setting="RETAIL_SPARK_UI_PORT",
        url=f"http://{settings.host}:{settings.spark_ui_port}",
        directory=str(PROJECT_ROOT),
        # The stack's settings, not the defaults: a stack on other ports or state folder (tests,
        # benchmarks, a second `retail up`) must reach its own broker and database.
        environment=retail_environment(settings),
        # SIGTERM to the Python driver alone: it stops its queries (a batch in flight finishes or is
        # replayed once after the restart) and its JVM, then exits 0. Sent to the group, the JVM's
        # shutdown hook and the sources' planner processes died under the running queries (exit 1, and
        # queries recorded as failed). A kill of the group after the wait is safe too (exactly-once sinks).
        stop_signal="TERM",
        stop_as_group=False,
        stop_wait_s=20,
        # The job gave up after repeated failures (spark.streaming_job.GAVE_UP): stay stopped, visibly.
        expected_exit_codes=(0, 3),
    )


def _consumer(settings: Settings) -> KafkaConsumer | None:
    try:
        return probe_consumer(settings.bootstrap_servers, kafka_security(settings), "retail-status")
    except KafkaError:
        return None


def _arrivals(consumer: KafkaConsumer) -> Arrivals:
    """The record timestamps of the oldest waiting messages; none when the broker does not answer (the
    stall then counts from the last landing)."""

    def arrivals(offsets: dict[tuple[str, int], int]) -> dict[str, datetime]:
        try:
            return arrivals_at(consumer, offsets, 500)
        except KafkaError:
            return {}

    return arrivals


def health(settings: Settings, running: bool = False) -> StreamHealth | None:
    """The stream's health from the ops tables and, for a running job, the broker (None when the
    database cannot be read); for a running job on the local cluster, also whether the master knows its
    application (a master restarted without its records leaves it waiting for executors forever, its
    process alive)."""
    topics = (settings.transactions_topic, settings.refunds_topic)
    consumer = _consumer(settings) if running else None
    try:
        # The broker's ends for the stall rule; without its answer, the ends the job's watcher recorded.
        ends = broker_log_ends(consumer, topics, timeout_ms=500) if consumer else None
    except KafkaError:
        ends = None
    try:
        recorded = stream_health(
            settings.writer_dsn,
            settings.stream_failure_window_s,
            settings.stream_stall_s,
            ends,
            topics,
            arrivals=_arrivals(consumer) if ends and consumer else None,
        )
    except psycopg.Error:
        recorded = None
    finally:
        if consumer is not None:
            consumer.close()
    if running and settings.spark_cluster and (recorded is None or recorded.state == "ok"):
        try:
            problem = spark_cluster.application_problem(spark_cluster.master_state(settings), STREAM_APP)
        except (OSError, RuntimeError, ValueError) as error:  # no answer, not a 200, not JSON
            problem = (
                "degraded",
                f"Spark master not answering at its UI port {settings.spark_master_ui_port}: {error}",
            )
        if problem:
            return StreamHealth(*problem)
    return recorded
