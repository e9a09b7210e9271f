"""Fixtures of the speed-layer tests: one SparkSession per test session, dimension rows, and settings
with per-module topics, checkpoints and lake so modules never see each other's data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.settings import PROJECT_ROOT, Settings, env_name
from retail.topics import ensure_topics
from spark.session import spark_session

# Tables the speed layer owns; emptied at the start of each module that asserts on them.
SPEED_LAYER_TABLES = (
    "raw.transactions",
    "raw.transaction_items",
    "raw.refunds",
    "speed.product_metrics_minute",
    "ops.dead_letter",
    "ops.sink_commits",
    "ops.stream_progress",
    "ops.late_events",
    "ops.stream_watermarks",
)


def load_dimensions(settings: Settings, skip_products: tuple[str, ...] = ()) -> None:
    """raw.products / raw.stores from the CSVs (the Airflow DAG of a later issue does this for real)."""
    with psycopg.connect(settings.writer_dsn) as conn, conn.cursor() as cursor:
        for table, path in (
            ("raw.products", settings.product_catalog_csv),
            ("raw.stores", settings.store_locations_csv),
        ):
            lines = path.read_text(encoding="utf-8").splitlines()
            header, rows = lines[0], lines[1:]
            if table == "raw.products":
                rows = [row for row in rows if row.split(",", 1)[0] not in skip_products]
            cursor.execute(f"create temp table dims (like {table} including defaults) on commit drop")
            with cursor.copy(f"copy dims ({header}) from stdin (format csv)") as copy:
                copy.write("\n".join(rows) + "\n")
            cursor.execute(f"insert into {table} select * from dims on conflict do nothing")
            conn.commit()


def truncate_speed_tables(settings: Settings) -> None:
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute(f"truncate {', '.join(SPEED_LAYER_TABLES)}")


def local_spark(settings: Settings) -> SparkSession:
    """The tests' SparkSession (also used by tests/dags' lambda test): 2 local cores, no UI."""
    session = spark_session(
        settings,
        "retail-speed-layer-tests",
        master="local[2]",
        ui=False,
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def spark(platform: Settings) -> Iterator[SparkSession]:
    session = local_spark(platform)
    yield session
    session.stop()


def module_settings(platform: Settings, tmp: Path, name: str, **overrides: object) -> Settings:
    """Settings of one test module: own topics (2 + 1 partitions), checkpoints, lake, fast triggers."""
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "transactions_topic": f"{name}-transactions-{suffix}",
        "refunds_topic": f"{name}-refunds-{suffix}",
        "transactions_partitions": 2,
        "refunds_partitions": 1,
        "checkpoint_uri": str(tmp / "checkpoints"),
        "lake_uri": str(tmp / "lake"),
        "stream_trigger_s": 0.5,
        "stream_lake_trigger_s": 1.0,
        "stream_dimension_refresh_s": 0.5,
        "spark_shuffle_partitions": 2,
    }
    values.update(overrides)
    settings = platform.model_copy(update=values)
    ensure_topics(settings)
    return settings


def lake_count(spark: SparkSession, path: Path) -> int:
    """Events in a lake dataset; -1 until its file sink committed a first batch (the sink creates its
    `_spark_metadata` log folder when the query starts, before there is anything to read)."""
    log = path / "_spark_metadata"
    if not log.exists() or not any(not p.name.startswith(".") for p in log.iterdir()):
        return -1
    return spark.read.parquet(str(path)).count()


def stream_progress(settings: Settings) -> object:
    """What changes while the stream works: its committed batches and progress events."""
    return scalar(
        settings,
        "select ((select count(*) from ops.sink_commits), (select count(*) from ops.stream_progress))::text",
    )


def scalar(settings: Settings, query: str, params: tuple = ()) -> object:
    with psycopg.connect(settings.writer_dsn) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def sink_waits_for_lock(settings: Settings, holder: psycopg.Connection) -> bool:
    """A session other than `holder` waits for a lock: the stream's batch, which has read its records."""
    return bool(
        scalar(
            settings,
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and pid <> %s"
            " and query like '%%stream_watermarks%%'",
            (holder.info.backend_pid,),
        )
    )


# Speed-layer minute metrics that differ from a recomputation over raw (0 when the stream is exact).
METRICS_MISMATCHES = """
with items as (
    select date_trunc('minute', event_ts) as window_start, product_id, sum(quantity) as units,
           sum(quantity * unit_price) as gross_revenue, sum(discount) as discount,
           count(distinct transaction_id) as transactions
    from raw.transaction_items group by 1, 2),
refunds as (
    select date_trunc('minute', event_ts) as window_start, product_id, count(*) as refunds,
           sum(amount) as refund_amount
    from raw.refunds group by 1, 2),
expected as (
    select coalesce(i.window_start, r.window_start) as window_start,
           coalesce(i.product_id, r.product_id) as product_id,
           coalesce(i.units, 0) as units, coalesce(i.gross_revenue, 0) as gross_revenue,
           coalesce(i.discount, 0) as discount, coalesce(i.transactions, 0) as transactions,
           coalesce(r.refunds, 0) as refunds, coalesce(r.refund_amount, 0) as refund_amount
    from items i full join refunds r using (window_start, product_id))
select count(*) from expected e
full join speed.product_metrics_minute m using (window_start, product_id)
where (e.units, e.gross_revenue, e.discount, e.transactions, e.refunds, e.refund_amount)
      is distinct from (m.units, m.gross_revenue, m.discount, m.transactions, m.refunds, m.refund_amount)
"""


_PASSED = (
    "state_dir",
    "pg_database",
    "pg_port",
    "kafka_port",
    "transactions_topic",
    "refunds_topic",
    "checkpoint_uri",
    "lake_uri",
    "stream_trigger_s",
    "stream_lake_trigger_s",
    "spark_shuffle_partitions",
    "stream_dimension_refresh_s",
    "spark_master",
    "spark_ui_port",
)


def start_job(settings: Settings, log: Path) -> subprocess.Popen:
    """`python -m spark.streaming_job` in its own process group, configured only through RETAIL_*."""
    env = {**os.environ, **{env_name(name): str(getattr(settings, name)) for name in _PASSED}}
    return subprocess.Popen(
        [sys.executable, "-m", "spark.streaming_job"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_hard(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop_job(process: subprocess.Popen) -> None:
    """SIGTERM (the job stops its queries between batches), SIGKILL if it does not end within 60 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        kill_hard(process)
