"""Restarts need no person, on a stack of its own (embedded PostgreSQL, the memory-only Tansu broker and
the streaming job under supervisord, exactly as `retail up` runs them):

* three `retail down` / `retail up` cycles with events produced before and after each: `down` drains,
  so every event lands exactly once and no alert is raised;
* supervisord stops the stream (SIGTERM) while a batch waits to commit: the job stops its queries and
  exits 0, no query is recorded as failed, and after the restart every event has landed exactly once;
* the broker is killed with SIGKILL while messages are not landed: supervisord restarts it, the stream
  carries on with the new log by itself, and an `error` alert states the exact lost count per partition.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator

import psycopg
import pytest

from retail.settings import Settings, load_settings
from spark.kafka_source import KafkaStreamReader
from stack import stack
from stack.supervisor import Supervisor, log_path
from tests.scratch import free_port
from tests.spark.conftest import METRICS_MISMATCHES, scalar, sink_waits_for_lock
from tests.spark.events import now_minute, producer, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a private stack with the stream on; the services read the same RETAIL_* variables."""
    state = tmp_path_factory.mktemp("unattended") / ".retail"
    env = {
        "RETAIL_STATE_DIR": str(state),
        "RETAIL_PG_PORT": str(free_port()),
        "RETAIL_KAFKA_PORT": str(free_port()),
        "RETAIL_SPARK_UI_PORT": str(free_port()),
        "RETAIL_AIRFLOW_PORT": str(free_port()),
        "RETAIL_DASHBOARD_PORT": str(free_port()),
        "RETAIL_DBT_DOCS_PORT": str(free_port()),
        "RETAIL_STREAM_ENABLED": "true",
        "RETAIL_STREAM_TRIGGER_S": "0.5",
        "RETAIL_STREAM_LAKE_TRIGGER_S": "2",
        "RETAIL_SPARK_MASTER": "local[2]",
        "RETAIL_SPARK_SHUFFLE_PARTITIONS": "2",
        "RETAIL_TRANSACTIONS_PARTITIONS": "2",
        "RETAIL_REFUNDS_PARTITIONS": "1",
        "RETAIL_HEALTH_TIMEOUT_S": "240",
        # `down` returns once drained: a long bound costs nothing unless the machine is very slow
        # (at load 30 a freshly restarted job needed over 180 s for 600 messages).
        "RETAIL_STREAM_DRAIN_TIMEOUT_S": "600",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = load_settings(_env_file=None)
        try:
            settings = stack.up(settings, report=lambda line: None)  # with the generated secrets
            yield settings
        finally:
            stack.down(settings)


def produce(settings: Settings, count: int, rng: random.Random) -> dict[str, int]:
    """`count` baskets on the transactions topic; returns event id -> partition."""
    sender = producer(settings)
    try:
        baskets = [transaction(rng, now_minute()) for _ in range(count)]
        futures = [
            (
                str(b.event_id),
                sender.send(settings.transactions_topic, key=b.key, value=b.model_dump_json().encode()),
            )
            for b in baskets
        ]
        sender.flush()
        return {event_id: future.get(timeout=30).partition for event_id, future in futures}
    finally:
        sender.close()


def landed(settings: Settings) -> int:
    return scalar(settings, "select count(*) from raw.transactions")


def speed_alerts(settings: Settings, only_losses: bool = False) -> list[dict]:
    """The speed layer's alerts (with `only_losses`, those of a replaced broker log)."""
    with psycopg.connect(settings.writer_dsn) as conn:
        rows = conn.execute(
            "select context from ops.alerts where source = 'speed_layer'"
            " and (not %s or context ? 'lost') order by alert_id",
            (only_losses,),
        )
        return [row[0] for row in rows]


@pytest.mark.timeout(1200)  # three JVM restarts: minutes each on a loaded machine
def test_three_down_up_cycles_land_every_event_once(stack_settings: Settings) -> None:
    settings = stack_settings
    rng = random.Random(5)
    produced: dict[str, int] = {}
    reports: list[str] = []
    for _ in range(3):
        produced |= produce(settings, 200, rng)
        wait_for(lambda: landed(settings) >= 100, what="events before the down")
        produced |= produce(settings, 300, rng)  # likely not all landed when `down` starts
        assert stack.down(settings, report=reports.append)
        drain_summary = [line for line in reports if line.startswith("stream: ")][-1]
        assert "drained" in drain_summary and "NOT" not in drain_summary, reports
        assert reports[-1].startswith("stopped: "), reports  # after the drain, never before
        stack.up(settings, report=lambda line: None)
        produced |= produce(settings, 100, rng)
    wait_for(lambda: landed(settings) == len(produced), timeout_s=300, what="every event after 3 restarts")
    assert scalar(settings, "select count(distinct event_id) from raw.transactions") == len(produced)
    assert scalar(settings, "select count(*) from ops.dead_letter") == 0
    assert speed_alerts(settings) == []


def log_size(settings: Settings) -> int:
    return log_path(settings, "stream").stat().st_size


def logged_since(settings: Settings, offset: int) -> str:
    with log_path(settings, "stream").open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def stopped(supervisor: Supervisor) -> bool:
    info = supervisor.info("stream")
    return info is not None and info.state == "STOPPED"


@pytest.mark.timeout(1200)  # generous waits: a restart of the job on a loaded machine
def test_sigterm_mid_batch_exits_0_and_lands_the_batch_once(stack_settings: Settings) -> None:
    settings = stack.up(stack_settings, report=lambda line: None)
    supervisor = Supervisor(settings)
    rng = random.Random(13)
    before = landed(settings)
    produce(settings, 30, rng)
    # The queries run (a first start on a loaded machine can take minutes).
    wait_for(lambda: landed(settings) == before + 30, timeout_s=600, what="events before the stop")
    offset = log_size(settings)
    blocker = psycopg.connect(settings.writer_dsn)
    try:
        # The stream's next batch reads these, then waits to commit (see the broker test below).
        blocker.execute(
            "select 1 from ops.stream_watermarks where watermark_name = %s for update",
            (settings.transactions_topic,),
        )
        produce(settings, 40, rng)
        wait_for(lambda: sink_waits_for_lock(settings, blocker), what="a batch in flight")
        supervisor.stop("stream", wait=False)  # SIGTERM, as `retail down` and supervision send it
        wait_for(
            lambda: "stopping on request" in logged_since(settings, offset) or stopped(supervisor),
            what="the job to stop its queries",
        )
    finally:
        blocker.close()  # the batch in flight may commit now, while its query stops
    wait_for(lambda: stopped(supervisor), what="the stream to stop")
    assert supervisor.info("stream").exit_status == 0, logged_since(settings, offset)[-3000:]
    assert scalar(settings, "select count(*) from ops.stream_status where state = 'failed'") == 0
    (line,) = [component for component in stack.status(settings) if component.name == "stream"]
    assert line.state == "down", line  # stopped, not failed

    stack.up(settings, report=lambda line: None)
    wait_for(lambda: landed(settings) == before + 70, timeout_s=300, what="every event after the restart")
    # Landed once (the raw keys could not hold it twice) and counted once in the minute metrics.
    assert scalar(settings, "select count(distinct event_id) from raw.transactions") == before + 70
    wait_for(lambda: scalar(settings, METRICS_MISMATCHES) == 0, what="metrics = recomputation from raw")
    assert speed_alerts(settings) == []


@pytest.mark.timeout(1200)  # generous waits: a restart of the job on a loaded machine
def test_broker_killed_with_unlanded_messages_alerts_exact_loss_and_carries_on(
    stack_settings: Settings,
) -> None:
    # Up, whatever the previous test left (a failed cycle may have left the stack down).
    settings = stack.up(stack_settings, report=lambda line: None)
    rng = random.Random(9)
    before = landed(settings)
    produce(settings, 50, rng)
    wait_for(lambda: landed(settings) == before + 50, what="events before the crash")
    supervisor = Supervisor(settings)
    stream_pid = supervisor.info("stream").pid

    # Hold the topic's watermark row: the stream's next batch reads its messages, then waits to commit.
    # While it waits the query plans no other batch, so whatever is produced then stays unread: the
    # loss is certain however fast or slow the machine (a batch that had read every doomed message
    # before the kill would land them all, and no alert would come).
    blocker = psycopg.connect(settings.writer_dsn)
    try:
        blocker.execute(
            "select 1 from ops.stream_watermarks where watermark_name = %s for update",
            (settings.transactions_topic,),
        )
        doomed = produce(settings, 60, rng)
        wait_for(lambda: sink_waits_for_lock(settings, blocker), what="the stream's batch to wait")
        doomed |= produce(settings, 60, rng)
        per_partition = {p: list(doomed.values()).count(p) for p in set(doomed.values())}

        def ends_recorded() -> bool:
            reader = KafkaStreamReader(
                {"bootstrap": settings.bootstrap_servers, "topic": settings.transactions_topic}
            )
            try:
                log = reader.log_bounds(probe_timeout_ms=1000)
            finally:
                reader.stop()
            with psycopg.connect(settings.writer_dsn) as conn:
                recorded = dict(
                    conn.execute(
                        "select kafka_partition, end_offset from ops.kafka_log_ends"
                        " where topic = %s and topic_id = %s",
                        (settings.transactions_topic, log.topic_id),
                    ).fetchall()
                )
            return recorded == log.latest

        # The stream's log-end watcher has seen every message the broker holds.
        wait_for(ends_recorded, what="the broker's ends recorded")
        broker_pid = supervisor.info("kafka").pid
        os.kill(broker_pid, signal.SIGKILL)
        wait_for(
            lambda: (
                (info := supervisor.info("kafka")) is not None
                and info.state == "RUNNING"
                and info.pid != broker_pid
            ),
            what="supervisord to restart the broker",
        )
    finally:
        blocker.close()

    # The next plan finds the topic gone; the job restarts (backing off), creates the topics and
    # counts the old log's loss.
    wait_for(lambda: bool(speed_alerts(settings, only_losses=True)), timeout_s=540, what="the loss alert")
    with psycopg.connect(settings.writer_dsn) as conn:
        landed_doomed = dict(
            conn.execute(
                "select kafka_partition, count(*) from raw.transactions where event_id = any(%s::uuid[])"
                " group by 1",
                (list(doomed),),
            ).fetchall()
        )
    (alert,) = speed_alerts(settings, only_losses=True)
    expected = {str(p): n - landed_doomed.get(p, 0) for p, n in sorted(per_partition.items())}
    assert alert["lost"] == expected
    assert sum(expected.values()) > 0

    after = landed(settings)
    produce(settings, 40, rng)
    wait_for(lambda: landed(settings) == after + 40, timeout_s=300, what="new events after the crash")
    # `retail status` does not say all is well after a crash and a loss.
    (line,) = [component for component in stack.status(settings) if component.name == "stream"]
    assert line.state == "degraded", line
    print(f"stream pid {stream_pid} -> {supervisor.info('stream').pid}")
