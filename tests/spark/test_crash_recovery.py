"""Crash test: the streaming process (Python driver, JVM and workers) is killed with SIGKILL at random
points twice while events arrive, then restarted; afterwards no event is missing or duplicated (by
event_id) in raw and lake, and the minute metrics still equal the recomputation from the raw tables."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from retail.settings import Settings
from spark.lake import dataset_path
from tests.scratch import free_port
from tests.spark.conftest import (
    METRICS_MISMATCHES,
    kill_hard,
    lake_count,
    load_dimensions,
    module_settings,
    scalar,
    start_job,
    stop_job,
    stream_progress,
    truncate_speed_tables,
)
from tests.spark.events import backfill, now_minute, send_events
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1800)  # its waits end on a stalled or dead job, not on a slow one
def test_sigkill_twice_then_restart_loses_and_duplicates_nothing(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("crash")
    settings = module_settings(platform, tmp, "crash", spark_master="local[2]", spark_ui_port=free_port())
    truncate_speed_tables(settings)
    load_dimensions(settings)
    seed = random.randrange(1_000_000)
    print(f"crash test seed {seed}")
    rng = random.Random(seed)
    baskets, refunds = backfill(seed, 1200, now_minute() - timedelta(minutes=2), timedelta(minutes=3))
    thirds = [baskets[:400], baskets[400:800], baskets[800:]]
    log = tmp / "stream.log"

    def committed() -> int:
        return scalar(settings, "select count(*) from ops.sink_commits where query_name = 'raw_transactions'")

    for part in thirds[:2]:
        send_events(
            settings, part, [r for r in refunds if r.transaction_id in {b.transaction_id for b in part}]
        )
        before = committed()
        job = start_job(settings, log)
        # No deadline on a slow start (JVM, queries, workers on a loaded machine): only on the job ending.
        wait_for(
            lambda before=before: committed() > before,
            timeout_s=900,
            what="a commit before the kill",
            job=job,
            log=log,
        )
        time.sleep(rng.uniform(0.0, 3.0))  # a random kill point within the run, not ordering
        kill_hard(job)

    last = thirds[2]
    send_events(settings, last, [r for r in refunds if r.transaction_id in {b.transaction_id for b in last}])
    job = start_job(settings, log)

    def until(condition, what: str) -> None:
        # Waits as long as the restarted job keeps committing batches; fails at once if it ends.
        wait_for(
            condition, timeout_s=300, what=what, progress=lambda: stream_progress(settings), job=job, log=log
        )

    try:
        until(
            lambda: scalar(settings, "select count(*) from raw.transactions") == len(baskets),
            "every transaction after the restarts",
        )
        until(lambda: scalar(settings, "select count(*) from raw.refunds") == len(refunds), "refunds")
        until(lambda: scalar(settings, METRICS_MISMATCHES) == 0, "metrics = recomputation")
        transactions_lake = Path(dataset_path(settings, "transactions"))
        until(lambda: lake_count(spark, transactions_lake) >= len(baskets), "lake")
    finally:
        stop_job(job)

    assert scalar(settings, "select count(distinct event_id) from raw.transactions") == len(baskets)
    assert scalar(settings, "select count(*) from raw.transaction_items") == sum(
        len(b.items) for b in baskets
    )
    assert scalar(settings, "select sum(units) from speed.product_metrics_minute") == sum(
        i.quantity for b in baskets for i in b.items
    )
    lake = spark.read.parquet(str(transactions_lake))
    assert lake.count() == len(baskets)
    assert lake.select("event_id").distinct().count() == len(baskets)
