"""The lambda architecture end to end: stream -> lake -> retail_batch (Spark + dbt builds) -> serving marts.

The real streaming job lands a backfill plus events later than its watermark; `retail_batch` then runs
with `dag.test()`. Afterwards the served minute metrics of closed hours equal a recomputation from raw,
`rpt_reconciliation` shows the speed layer's misses where the late events fell, and every mart answers
the analyst during the run. A rerun (with a CLI backfill waiting for the writer lock) and a backfill DAG
run change no table; a year-old replay is served at minute grain; a failing Spark step still lets the
raw-derived marts advance and raises an alert; a failed model and a warned test are named in the alerts.
Module fixtures build the state once (one stream phase, one hourly run); only the history, failure and
alert tests add runs of their own.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.settings import PROJECT_ROOT, Settings, get_settings
from retail.writer_lock import current_holder
from spark.streaming_job import start_queries
from tests.checksums import table_checksums
from tests.conftest import waiting_for_writer_lock
from tests.serving_poller import MartPoller
from tests.spark.conftest import load_dimensions, local_spark, module_settings, scalar, truncate_speed_tables
from tests.spark.events import backfill, refund, send_events, transaction
from tests.waiting import wait_for

# Fixture setup (the stream, an hourly run) counts against the first test's timeout: generous on busy cores.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

# Tables the two batch DAGs write (the recompute's and every mart dbt builds).
WRITTEN_TABLES = (
    "batch.product_metrics_minute",
    "batch.closed_hours",
    "marts.dim_products",
    "marts.dim_stores",
    "marts.dim_customers",
    "marts.dim_date",
    "marts.fct_sales",
    "marts.fct_refunds",
    "marts.agg_sales_daily",
    "marts.agg_kpis_daily",
    "marts.agg_customer_daily",
    "marts.rpt_reconciliation",
)

# Per product and minute from the raw facts, deduplicated as the raw tables are (one row per event).
RECOMPUTED = """
with sales as (
    select date_trunc('minute', i.event_ts) as window_start, i.product_id, sum(i.quantity) as units,
           sum(i.quantity * i.unit_price) as gross_revenue, sum(i.discount) as discount,
           count(distinct i.transaction_id) as transactions
    from raw.transaction_items i group by 1, 2
), returned as (
    select date_trunc('minute', event_ts) as window_start, product_id, count(*) as refunds,
           sum(amount) as refund_amount
    from raw.refunds group by 1, 2
)
select coalesce(s.window_start, r.window_start), coalesce(s.product_id, r.product_id),
       coalesce(s.units, 0), coalesce(s.gross_revenue, 0), coalesce(s.discount, 0),
       coalesce(s.transactions, 0), coalesce(r.refunds, 0), coalesce(r.refund_amount, 0)
from sales s full join returned r on s.window_start = r.window_start and s.product_id = r.product_id
where coalesce(s.window_start, r.window_start) >= %(start)s
  and coalesce(s.window_start, r.window_start) < %(end)s
"""
SERVED = """
select window_start, product_id, units, gross_revenue, discount, transactions, refunds, refund_amount
from marts.fct_product_metrics_minute where window_start >= %(start)s and window_start < %(end)s and is_final
"""


def hourly_as_of(hour: datetime) -> datetime:
    """The hourly runs' logical date: the data's hour is closed then (10 minutes after it ended)."""
    return hour + timedelta(hours=2, minutes=15)


def run_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from stack.airflow import DAGS_FOLDER

    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id).test(**kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


class Lambda:
    """What the module fixture built: settings, the closed hour with the data, the late events' minute."""

    def __init__(
        self, settings: Settings, hour: datetime, late_minute: datetime, late_units: dict, late_refund: Any
    ) -> None:
        self.settings = settings
        self.late_refund = late_refund
        self.hour = hour
        self.late_minute = late_minute
        self.late_units = late_units
        self.states: dict[str, str] = {}
        self.checksum_after: dict = {}

    def checksum(self) -> dict:
        with psycopg.connect(self.settings.writer_dsn) as conn:
            return table_checksums(conn, WRITTEN_TABLES)

    def rows(self, query: str) -> set[tuple]:
        with psycopg.connect(self.settings.writer_dsn) as conn:
            return set(conn.execute(query, {"start": self.hour, "end": self.hour + timedelta(hours=1)}))


@pytest.fixture(scope="module")
def spark(platform: Settings) -> Iterator[SparkSession]:
    with pytest.MonkeyPatch.context() as patch:
        # PySpark's sockets to its JVM time out after 15 s, which a loaded 2-core machine exceeded
        # (CANNOT_OPEN_SOCKET killed a stream query); the workers inherit this from the driver.
        patch.setenv("SPARK_AUTH_SOCKET_TIMEOUT", "120")
        session = local_spark(platform)
        yield session
        session.stop()


@pytest.fixture(scope="module")
def lambda_run(
    airflow_env: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lambda]:
    settings = module_settings(airflow_env, tmp_path_factory.mktemp("lambda"), "lambda")
    truncate_speed_tables(settings)
    with psycopg.connect(settings.admin_dsn, autocommit=True) as conn:
        conn.execute("truncate batch.product_metrics_minute, batch.closed_hours, ops.alerts")
    load_dimensions(settings)
    # Two hours ago: closed for the run below (an hour closes 10 minutes after it ends).
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    # No refunds in the backfill but one current refund (below): each topic has its own event-time
    # watermark, so the refunds topic needs an on-time refund for the late refund to be late.
    baskets, _ = backfill(21, 300, hour + timedelta(minutes=5), timedelta(minutes=40), refund_share=0)
    rng = random.Random(22)
    late_minute = hour + timedelta(minutes=20)
    late = [transaction(rng, late_minute + timedelta(seconds=10 + i), lines=2) for i in range(5)]
    late_refund = refund(rng, baskets[100], late_minute + timedelta(seconds=30))
    current_refund = refund(rng, baskets[200], hour + timedelta(minutes=46))
    late_units: dict[str, int] = {}
    for basket in late:
        for line in basket.items:
            late_units[line.product_id] = late_units.get(line.product_id, 0) + line.quantity

    # Sent before the stream starts, so its first batch holds them all: nothing of the backfill is late.
    send_events(settings, baskets, [current_refund])
    queries = start_queries(spark, settings)
    try:
        wait_for(
            lambda: scalar(settings, "select count(*) from raw.transactions") == len(baskets), what="backfill"
        )
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 1, what="current refund")
        # The raw sinks advance the shared event-time watermark with the facts they commit.
        latest = scalar(settings, "select max(max_event_ts) from ops.stream_watermarks")
        assert latest >= late_minute + timedelta(minutes=6), latest
        send_events(
            settings, late, [late_refund]
        )  # 25 minutes behind the latest event: beyond the 5-minute watermark
        wait_for(
            lambda: scalar(settings, "select count(*) from raw.transactions") == len(baskets) + len(late),
            what="late events in raw",
        )
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 2, what="late refund in raw")
        lake = f"{settings.lake.rstrip('/')}/transactions"
        wait_for(lambda: _lake_count(spark, lake) == len(baskets) + len(late), what="every event in the lake")
    finally:
        for query in queries:
            query.stop()

    with pytest.MonkeyPatch.context() as patch:
        # The DAG's tasks (and spark-submit's job) read settings from the environment: this module's lake.
        patch.setenv("RETAIL_LAKE_URI", settings.lake)
        # The stream stopped a moment ago: the clock alone closes hours (the stream gate has its own test).
        patch.setenv("RETAIL_BATCH_STREAM_QUIET_S", "0")
        patch.setenv("RETAIL_CHECKPOINT_URI", settings.checkpoint_dir)
        get_settings.cache_clear()
        state = Lambda(settings, hour, late_minute, late_units, late_refund.amount)
        # States now: a later dag.test() of the same logical date replaces this run.
        state.states = task_states(run_dag("retail_batch", logical_date=hourly_as_of(hour)))
        state.checksum_after = state.checksum()
        yield state
    get_settings.cache_clear()


def _lake_count(spark: SparkSession, path: str) -> int:
    try:
        return spark.read.parquet(path).select("event_id").distinct().count()
    except Exception:  # the folder appears with the lake query's first commit
        return -1


def test_every_task_succeeds(lambda_run: Lambda) -> None:
    states = lambda_run.states
    assert states, "no task ran"
    assert {task: state for task, state in states.items() if state != "success"} == {}
    assert {"plan_hours", "recompute_closed_hours", "publish_marts", "source_freshness"} <= set(states)
    assert {"build_marts", "build_serving"} <= set(states)  # one dbt build per group


def test_served_metrics_of_closed_hours_equal_the_raw_facts(lambda_run: Lambda) -> None:
    recomputed = lambda_run.rows(RECOMPUTED)
    assert recomputed, "no raw facts in the hour"
    assert lambda_run.rows(SERVED) == recomputed
    with psycopg.connect(lambda_run.settings.writer_dsn) as conn:
        hours = [row[0] for row in conn.execute("select hour_start from batch.closed_hours")]
    assert lambda_run.hour in hours


def test_reconciliation_shows_what_the_speed_layer_missed(lambda_run: Lambda) -> None:
    mismatches = lambda_run.rows(
        "select window_start, product_id, units_delta, refund_amount_delta from marts.rpt_reconciliation"
        " where window_start >= %(start)s and window_start < %(end)s and not is_matching"
    )
    assert {window for window, *_ in mismatches} == {lambda_run.late_minute}
    units = {product: delta for _, product, delta, _ in mismatches if delta}
    assert units == lambda_run.late_units
    assert sum(refund_delta for *_, refund_delta in mismatches) == lambda_run.late_refund


def test_marts_asset_is_announced(lambda_run: Lambda) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_dag_id == "retail_batch").all()
        names = [event.asset.name for event in events]
    # Ours: what retail_ml schedules on (the builds emit no Asset per model).
    assert "marts" in names


def _lock_holder(settings: Settings) -> str:
    with psycopg.connect(settings.writer_dsn) as conn:
        return current_holder(conn) or ""


class Rerun:
    """The second hourly run: the analyst polling every mart, a CLI backfill of the hour started during it."""

    def __init__(self, states: dict[str, str], checksum: dict, poller: MartPoller, seen: dict) -> None:
        self.states, self.checksum, self.poller, self.seen = states, checksum, poller, seen


@pytest.fixture(scope="module")
def rerun(lambda_run: Lambda) -> Rerun:
    """One run asserting three things: a rerun over the same data, the analyst's uptime during an hourly
    rebuild of built marts (what happens every hour), and one writer at a time against `retail batch`."""
    settings, hour = lambda_run.settings, lambda_run.hour
    backfill = [sys.executable, "-m", "stack.cli", "batch", "--start", f"{hour:%Y-%m-%dT%H:00Z}"]
    backfill += ["--end", f"{hour + timedelta(hours=1):%Y-%m-%dT%H:00Z}"]
    seen: dict[str, Any] = {}

    def start_backfill_during_the_run() -> None:
        wait_for(
            lambda: "airflow:retail_batch" in _lock_holder(settings),
            what="an hourly writer task",
            timeout_s=600,
        )
        seen["holder"] = _lock_holder(settings)
        seen["process"] = subprocess.Popen(
            backfill,
            env=dict(os.environ),
            cwd=PROJECT_ROOT,  # dag.test() may leave this process in a temporary folder already removed
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # The backfill waits for the hourly task holding the lock (or, had it slipped in between two
        # tasks, the next hourly task waits for the backfill): never both writing at once.
        wait_for(
            lambda: (
                waiting_for_writer_lock(settings, "retail batch")
                or waiting_for_writer_lock(settings, "airflow:retail_batch.%")
            ),
            what="one writer waiting for the other",
            timeout_s=120,
        )
        seen["waited"] = True

    starter = threading.Thread(target=start_backfill_during_the_run)
    with MartPoller(settings) as poller:
        starter.start()
        states = task_states(run_dag("retail_batch", logical_date=hourly_as_of(hour)))
        starter.join(timeout=300)
    process = seen.get("process")
    if process is not None:
        _, seen["errors"] = process.communicate(timeout=600)
        seen["returncode"] = process.returncode
    return Rerun(states, lambda_run.checksum(), poller, seen)


def test_rerun_leaves_identical_tables(lambda_run: Lambda, rerun: Rerun) -> None:
    """The same hour recomputed twice (the rerun and the CLI backfill) changes no table."""
    assert {t: s for t, s in rerun.states.items() if s != "success"} == {}
    assert rerun.checksum == lambda_run.checksum_after
    assert all(count > 0 for count, _ in rerun.checksum.values()), rerun.checksum


def test_every_mart_answers_the_analyst_during_the_hourly_run(rerun: Rerun) -> None:
    """Polled as `retail_analyst` at >= 5 Hz while the run rebuilt them: tables, live and serving views."""
    poller = rerun.poller
    assert {"fct_sales_live", "agg_kpis_daily_live", "fct_product_metrics_minute", "fct_sales"} <= set(
        poller.relations
    )
    assert poller.errors == []
    # Paced at 5 Hz; a busy machine may slow a round, so only coverage is asserted, not a rate.
    assert len(poller.rounds) >= 10, len(poller.rounds)
    assert set(poller.list_relations()) == set(poller.relations)


def test_a_backfill_started_during_an_hourly_run_waits_and_corrupts_nothing(
    lambda_run: Lambda, rerun: Rerun
) -> None:
    """Checksums equal the first run's, i.e. what the two done one after the other leave (previous test)."""
    assert rerun.seen.get("waited"), rerun.seen
    assert rerun.seen.get("returncode") == 0, str(rerun.seen.get("errors"))[-2000:]
    assert "airflow:retail_batch" in rerun.seen["holder"]
    assert rerun.checksum == lambda_run.checksum_after


def test_backfill_of_the_day_rebuilds_identically(lambda_run: Lambda) -> None:
    day = f"{lambda_run.hour:%Y-%m-%d}"
    before = lambda_run.checksum()
    # One run: rebuilding what the hourly runs left, identically, is what a second run would show too.
    run = run_dag("retail_backfill", run_conf={"start_date": day, "end_date": day})
    assert {t: s for t, s in task_states(run).items() if s != "success"} == {}
    assert lambda_run.checksum() == before
    assert lambda_run.rows(SERVED) == lambda_run.rows(RECOMPUTED)


def test_backfill_with_a_reversed_range_fails_naming_the_fix(lambda_run: Lambda) -> None:
    run = run_dag("retail_backfill", run_conf={"start_date": "2026-11-05", "end_date": "2026-11-01"})
    assert task_states(run)["plan_range"] == "failed"
    with psycopg.connect(lambda_run.settings.writer_dsn) as conn:
        message = conn.execute(
            "select message from ops.alerts where source = 'airflow:retail_backfill.plan_range'"
            " order by alert_id desc limit 1"
        ).fetchone()
    assert message is not None and "swap them" in message[0]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """A `retail` command in a process of its own, with this module's settings (environment)."""
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", *args],
        env=dict(os.environ),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_history_a_year_back_is_served_at_minute_grain_after_one_batch_and_one_build(
    lambda_run: Lambda, spark: SparkSession
) -> None:
    settings = lambda_run.settings
    start = lambda_run.hour - timedelta(days=400)
    old, _ = backfill(31, 150, start + timedelta(minutes=3), timedelta(hours=5), refund_share=0)
    raw_before = scalar(settings, "select count(*) from raw.transactions")
    lake = f"{settings.lake.rstrip('/')}/transactions"
    lake_before = _lake_count(spark, lake)
    send_events(settings, old)
    queries = start_queries(spark, settings)
    try:
        wait_for(
            lambda: scalar(settings, "select count(*) from raw.transactions") == raw_before + len(old),
            what="the old sales in raw",
        )
        wait_for(lambda: _lake_count(spark, lake) == lake_before + len(old), what="the old sales in the lake")
    finally:
        for query in queries:
            query.stop()
    assert scalar(
        settings, "select count(*) from ops.late_events where event_minute < %s", (start + timedelta(days=1),)
    )

    batch = _cli("batch")  # no arguments: what the hourly run closes, late hours of any age included
    assert batch.returncode == 0, batch.stderr[-2000:]
    build = _cli("dbt", "build", "--quiet")
    assert build.returncode == 0, build.stdout[-2000:]
    window = {"start": start.replace(minute=0), "end": start + timedelta(hours=6)}
    with psycopg.connect(settings.writer_dsn) as conn:
        recomputed = set(conn.execute(RECOMPUTED, window))
        served = set(conn.execute(SERVED, window))
    assert len(recomputed) > 100
    assert served == recomputed


def test_a_failing_spark_step_leaves_raw_marts_advancing_and_alerts(
    lambda_run: Lambda, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = lambda_run.settings
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute("truncate ops.alerts")
        # One more basket in raw, copied from one of the hour's: the raw-derived marts must show it.
        conn.execute(
            """insert into raw.transactions (transaction_id, event_id, event_ts, store_id, customer_id,
                   channel, payment_method, line_count, schema_version)
               select transaction_id || '-copy', gen_random_uuid(), event_ts, store_id, customer_id,
                   channel, payment_method, line_count, schema_version
               from raw.transactions where event_ts >= %s order by transaction_id limit 1""",
            (lambda_run.hour,),
        )
        conn.execute(
            """insert into raw.transaction_items (transaction_id, line_number, product_id, quantity,
                   unit_price, discount, event_ts, store_id)
               select i.transaction_id || '-copy', i.line_number, i.product_id, i.quantity, i.unit_price,
                   i.discount, i.event_ts, i.store_id
               from raw.transaction_items i
               join raw.transactions t on t.transaction_id = i.transaction_id || '-copy'"""
        )
        new_basket = conn.execute(
            "select transaction_id from raw.transactions where transaction_id like '%-copy'"
        ).fetchone()[0]  # type: ignore[index]
    # An empty lake: the batch job refuses to close hours it holds fewer events of than raw.
    monkeypatch.setenv("RETAIL_LAKE_URI", str(tmp_path / "empty-lake"))
    monkeypatch.setenv("RETAIL_BATCH_TASK_RETRIES", "0")
    run = run_dag("retail_batch", logical_date=lambda_run.hour + timedelta(hours=3, minutes=15))
    states = task_states(run)
    assert states["recompute_closed_hours"] == "failed"
    assert states["build_marts"] == "success"
    assert states["publish_marts"] == "success"
    assert states["source_freshness"] in {"success", "failed"}  # it ran, whatever failed before
    assert states["build_serving"] == "upstream_failed"
    assert str(run.state) == "failed"
    with psycopg.connect(settings.writer_dsn) as conn:
        assert conn.execute(
            "select count(*) from marts.fct_sales where transaction_id = %s", (new_basket,)
        ).fetchone()[0]  # type: ignore[index]
        sources = [row[0] for row in conn.execute("select source from ops.alerts")]
    assert "airflow:retail_batch.recompute_closed_hours" in sources, sources


def test_a_failed_model_and_a_warned_test_are_named_in_the_alerts(
    lambda_run: Lambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One `dbt build` per group: its failure alert names the model that failed, and a warn-level test
    is a warning alert naming the test (runs last: it leaves a refund of an unknown basket built)."""
    settings = lambda_run.settings
    with psycopg.connect(settings.admin_dsn, autocommit=True) as conn:
        conn.execute("truncate ops.alerts")
        # A refund naming a basket raw does not hold: its relationships test has severity warn.
        conn.execute(
            """insert into raw.refunds (refund_id, event_id, transaction_id, product_id, quantity, amount,
                   reason, event_ts, schema_version)
               select refund_id || '-orphan', gen_random_uuid(), 'no-such-basket', product_id, quantity,
                   amount, reason, event_ts, schema_version
               from raw.refunds order by event_ts desc limit 1"""
        )
        # The batch layer's source missing by name: building its staging view fails (readers of the
        # served views are unaffected, their views follow the renamed table).
        conn.execute("alter table batch.closed_hours rename to closed_hours_hidden")
    monkeypatch.setenv("RETAIL_BATCH_TASK_RETRIES", "0")
    try:
        run = run_dag(
            "retail_batch",
            logical_date=lambda_run.hour + timedelta(hours=4, minutes=15),
            mark_success_pattern="^(plan_hours|recompute_closed_hours)$",
        )
    finally:
        with psycopg.connect(settings.admin_dsn, autocommit=True) as conn:
            conn.execute("alter table batch.closed_hours_hidden rename to closed_hours")
    states = task_states(run)
    assert (states["build_marts"], states["build_serving"]) == ("success", "failed"), states
    with psycopg.connect(settings.writer_dsn) as conn:
        alerts = dict(conn.execute("select source, message from ops.alerts").fetchall())
    warned = alerts.get("dbt:retail_batch.build_marts", "")
    assert "relationships_stg_raw__refunds_transaction_id" in warned, alerts
    assert "stg_batch__closed_hours" in alerts.get("airflow:retail_batch.build_serving", ""), alerts
