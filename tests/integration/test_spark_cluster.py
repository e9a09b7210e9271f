"""Cluster test: the stream and the batch job on a real Spark standalone cluster (a master and a worker
started by `retail up` with RETAIL_SPARK_CLUSTER=true, supervised, on 127.0.0.1), executors in JVMs of
their own. One stack for the module, one test (each phase needs the previous one's state):

* a backfill lands with exact counts in raw, speed and lake;
* the batch job, submitted by the DAGs' SparkSubmitOperator to the spark:// master, closes that hour
  while the stream runs: both applications hold executors at once, each within its spark.cores.max;
* meanwhile a second backfill arrives and the worker JVM is SIGKILLed (the executors of both die with
  it); supervisord restarts it, and every event still lands exactly once (0 lost, 0 duplicated in raw
  and lake, metrics equal to raw), and the batch job still closes its hour with the stream's metrics;
* then the master JVM is SIGKILLed while a third backfill arrives; supervisord restarts it, the stream's
  application is registered with it again, holding its executors (`retail status` says "up"), and
  every event lands exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pyarrow.parquet as pq
import pytest

from dags.common.batch import recompute_operator
from retail.settings import Settings, get_settings, load_settings
from spark.lake import dataset_path
from stack import airflow, stack
from stack.spark_cluster import master_state, work_dir
from stack.supervisor import Supervisor
from tests.spark.conftest import METRICS_MISMATCHES, scalar
from tests.spark.events import backfill, send_events
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

STREAM_CORES = 2
BATCH_CORES = 1
BASKETS = 600
STREAM_APP = "retail-speed-layer"
BATCH_APP = "retail-batch-recompute"
CLUSTER_CONN_ID = "retail_spark_cluster_test"


def _free_port_in_range(taken: set[int], low: int = 26000, high: int = 26999) -> int:
    """A free port of this test's range (ports of parallel test runs elsewhere do not collide)."""
    for port in random.sample(range(low, high + 1), high - low + 1):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A private stack: PostgreSQL, Kafka, a Spark master and worker, the stream on the cluster."""
    state = tmp_path_factory.mktemp("cluster") / ".retail"
    taken: set[int] = set()
    ports = {
        name: str(_free_port_in_range(taken))
        for name in (
            "PG_PORT",
            "KAFKA_PORT",
            "SPARK_UI_PORT",
            "SPARK_MASTER_PORT",
            "SPARK_MASTER_UI_PORT",
            "SPARK_WORKER_UI_PORT",
            "AIRFLOW_PORT",
            "DASHBOARD_PORT",
            "DBT_DOCS_PORT",
        )
    }
    env = {
        "RETAIL_STATE_DIR": str(state),
        **{f"RETAIL_{name}": port for name, port in ports.items()},
        "RETAIL_SPARK_CLUSTER": "true",
        "RETAIL_SPARK_WORKER_CORES": str(STREAM_CORES + BATCH_CORES),
        "RETAIL_SPARK_STREAM_CORES": str(STREAM_CORES),
        "RETAIL_SPARK_BATCH_CORES": str(BATCH_CORES),
        "RETAIL_SPARK_WORKER_MEMORY": "3g",
        "RETAIL_STREAM_ENABLED": "true",
        "RETAIL_STREAM_TRIGGER_S": "0.5",
        "RETAIL_STREAM_LAKE_TRIGGER_S": "2",
        "RETAIL_SPARK_SHUFFLE_PARTITIONS": "2",
        "RETAIL_TRANSACTIONS_PARTITIONS": "2",
        "RETAIL_REFUNDS_PARTITIONS": "1",
        "RETAIL_HEALTH_TIMEOUT_S": "300",
        "RETAIL_STREAM_DRAIN_TIMEOUT_S": "180",
        # A connection id of its own: Airflow's configuration is read once per process, so a secrets
        # backend an earlier test's stack configured would answer for `retail_spark` (its local master).
        "RETAIL_BATCH_SPARK_CONN_ID": CLUSTER_CONN_ID,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        # The SparkSubmitOperator finds spark-submit on PATH and its connection where `retail up` would
        # put it for Airflow (here: the environment), and reads the process-wide settings.
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        get_settings.cache_clear()
        settings = load_settings(_env_file=None)
        try:
            settings = stack.up(settings, report=lambda line: None)  # with the generated secrets
            spark_conn = airflow.connections(settings)[airflow.SPARK_CONN_ID]
            patch.setenv(f"AIRFLOW_CONN_{CLUSTER_CONN_ID.upper()}", json.dumps(spark_conn))
            yield settings
        finally:
            stack.down(settings)
            get_settings.cache_clear()


def _listening_hosts(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc: no tool needed)."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    hosts.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    # Java listens on IPv6 sockets: 127.0.0.1 shows as the mapped ::ffff:127.0.0.1.
                    hosts.add(socket.inet_ntop(socket.AF_INET6, words).removeprefix("::ffff:"))
    return hosts


def _lake_event_ids(settings: Settings, dataset: str) -> list[str]:
    """Event ids of the files the lake's file sink committed (its `_spark_metadata` log), as Spark reads
    them: a task killed with its executor may leave a file the log never lists."""
    root = Path(dataset_path(settings, dataset))
    log = root / "_spark_metadata"
    files: set[str] = set()
    for entry in sorted(log.iterdir()) if log.is_dir() else []:
        if entry.name.startswith("."):
            continue
        for line in entry.read_text().splitlines()[1:]:  # the first line is the log version
            record = json.loads(line)
            if record.get("action") == "add":
                files.add(urlsplit(record["path"]).path)
    ids: list[str] = []
    for path in sorted(files):
        ids += [str(value) for value in pq.read_table(path, columns=["event_id"]).column(0).to_pylist()]
    return ids


def _app(settings: Settings, name: str, section: str = "activeapps") -> dict | None:
    apps = [app for app in master_state(settings)[section] if app["name"] == name]
    return apps[-1] if apps else None


def _events(seed: int, start: datetime) -> tuple[list, list]:
    """BASKETS baskets over 3 minutes (under the 5-minute watermark: none is late) and their refunds."""
    return backfill(seed, BASKETS, start, timedelta(minutes=3))


def _halves(baskets: list, refunds: list) -> tuple[tuple[list, list], tuple[list, list]]:
    """The baskets split in two, each half with its own baskets' refunds: one half is sent before a
    kill, the other while the killed process is down or back."""
    half = len(baskets) // 2
    first = {b.transaction_id for b in baskets[:half]}
    return (
        (baskets[:half], [r for r in refunds if r.transaction_id in first]),
        (baskets[half:], [r for r in refunds if r.transaction_id not in first]),
    )


def _closing(settings: Settings, hour: datetime, run_id: str) -> Future:
    """The batch job closing `hour`, submitted as the DAGs submit it (SparkSubmitOperator), in a thread."""
    operator = recompute_operator("recompute_closed_hours", settings, "plan_hours")
    end = hour + timedelta(hours=1)
    operator.application_args = ["--start", hour.isoformat(), "--end", end.isoformat(), "--run-id", run_id]
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(operator.execute, {})
    pool.shutdown(wait=False)
    return future


SPEED_BATCH_MISMATCHES = """
select count(*)
from (select * from speed.product_metrics_minute where window_start >= %s and window_start < %s) s
full join batch.product_metrics_minute b using (window_start, product_id)
where (s.units, s.gross_revenue, s.discount, s.transactions, s.refunds, s.refund_amount)
      is distinct from (b.units, b.gross_revenue, b.discount, b.transactions, b.refunds, b.refund_amount)
"""


@pytest.mark.timeout(1800)
def test_stream_and_batch_on_a_cluster_survive_worker_and_master_sigkills(cluster: Settings) -> None:
    settings = cluster
    master_port = settings.spark_master_port
    assert settings.spark_master_url == f"spark://127.0.0.1:{master_port}"
    for port in (master_port, settings.spark_master_ui_port, settings.spark_worker_ui_port):
        assert _listening_hosts(port) == {"127.0.0.1"}, f"port {port} must listen on 127.0.0.1 only"

    def cores(name: str) -> int | None:
        return (_app(settings, name) or {}).get("cores")

    began = time.monotonic()

    def phase(name: str) -> None:
        """Shown with the output of a failed run: where the time went."""
        print(f"{time.monotonic() - began:6.0f}s {name}")

    wait_for(lambda: cores(STREAM_APP) == STREAM_CORES, timeout_s=300, what="the stream's executors")
    phase("stream has its executors")
    seed = random.randrange(1_000_000)
    print(f"cluster test seed {seed}")
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    closed_hour, live_hour = now_hour - timedelta(hours=2), now_hour - timedelta(hours=1)
    sent_baskets, sent_refunds = _events(seed, closed_hour + timedelta(minutes=20))

    def landed() -> None:
        """Exactly what was sent, in raw, speed (= raw, nothing late) and the lake's committed files."""
        baskets, refunds = len(sent_baskets), len(sent_refunds)
        wait_for(
            lambda: scalar(settings, "select count(*) from raw.transactions") == baskets,
            timeout_s=420,
            what=f"{baskets} baskets in raw",
        )
        wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == refunds, what="refunds")
        assert scalar(settings, "select count(distinct event_id) from raw.transactions") == baskets
        lines = sum(len(b.items) for b in sent_baskets)
        assert scalar(settings, "select count(*) from raw.transaction_items") == lines
        wait_for(lambda: scalar(settings, METRICS_MISMATCHES) == 0, what="speed metrics = raw")
        for dataset, expected in (("transactions", baskets), ("refunds", refunds)):
            wait_for(
                lambda: len(_lake_event_ids(settings, dataset)) >= expected,  # noqa: B023
                timeout_s=300,
                what=f"{dataset} in the lake",
            )
            ids = _lake_event_ids(settings, dataset)
            assert len(ids) == len(set(ids)) == expected, f"{dataset}: lost or duplicated in the lake"

    send_events(settings, sent_baskets, sent_refunds)
    landed()
    phase("first backfill landed")

    # The batch job closes the first hour while the stream runs: both hold executors at once.
    run_id = f"cluster-{seed}"
    closing = _closing(settings, closed_hour, run_id)
    baskets, refunds = _events(seed + 1, live_hour + timedelta(minutes=20))
    before, after = _halves(baskets, refunds)
    send_events(settings, *before)
    sent_baskets += baskets
    sent_refunds += refunds

    def batch_scheduled() -> bool:
        # On a quiet machine the batch job can finish (~11 s) between two polls: then it is among the
        # completed applications, and its executor folder on the worker (asserted below) shows it ran
        # there next to the stream; the kill then hits the stream's executors alone.
        batch_ran = cores(BATCH_APP) == BATCH_CORES or _app(settings, BATCH_APP, "completedapps") is not None
        return batch_ran and cores(STREAM_APP) == STREAM_CORES

    wait_for(batch_scheduled, timeout_s=300, what="executors for the batch job next to the stream's")

    # Mid-stream, the worker JVM (spark-class execs java: supervisord's pid is the JVM) dies hard, with
    # the executors of both applications; the rest of the backfill arrives while it is down.
    supervisor = Supervisor(settings)
    worker = supervisor.info("spark-worker")
    assert worker is not None and worker.pid
    assert Path(f"/proc/{worker.pid}/exe").resolve().name == "java"
    phase("batch job has its executors")
    os.kill(worker.pid, signal.SIGKILL)
    send_events(settings, *after)

    def restarted() -> bool:
        info = supervisor.info("spark-worker")
        return info is not None and info.state == "RUNNING" and info.pid not in (None, worker.pid)

    wait_for(restarted, timeout_s=120, what="supervisord to restart the worker")
    phase("worker restarted")
    landed()
    phase("second backfill landed")

    closing.result(timeout=900)
    phase("batch job done")
    with psycopg.connect(settings.writer_dsn) as conn:
        closed = conn.execute("select hour_start, batch_run_id from batch.closed_hours").fetchall()
        mismatches = conn.execute(
            SPEED_BATCH_MISMATCHES, (closed_hour, closed_hour + timedelta(hours=1))
        ).fetchone()
    assert closed == [(closed_hour, run_id)]
    assert mismatches == (0,), "batch metrics of the closed hour differ from the stream's (= raw)"
    batch_app = _app(settings, BATCH_APP, "completedapps")
    assert batch_app is not None and list((work_dir(settings) / batch_app["id"]).iterdir())

    # Mid-stream, the master JVM dies hard; the stream's executors run on, and a third backfill arrives
    # on either side of the master's restart.
    stream_app = _app(settings, STREAM_APP)
    assert stream_app is not None
    master = supervisor.info("spark-master")
    assert master is not None and master.pid
    os.kill(master.pid, signal.SIGKILL)
    baskets, refunds = _events(seed + 2, live_hour + timedelta(minutes=30))
    before, after = _halves(baskets, refunds)
    send_events(settings, *before)
    sent_baskets += baskets
    sent_refunds += refunds

    def master_back() -> bool:
        info = supervisor.info("spark-master")
        if info is None or info.state != "RUNNING" or info.pid in (None, master.pid):
            return False
        try:
            return master_state(settings)["status"] == "ALIVE"
        except OSError:  # its UI is not up yet
            return False

    wait_for(master_back, timeout_s=300, what="supervisord to restart the master, and the master to recover")
    phase("master restarted")
    # The same application (its id), not a new one: the master took it back with its executors.
    wait_for(
        lambda: cores(STREAM_APP) == STREAM_CORES, timeout_s=180, what="the stream's app registered again"
    )
    assert _app(settings, STREAM_APP)["id"] == stream_app["id"]
    send_events(settings, *after)
    landed()
    phase("third backfill landed")
    line = next(c for c in stack.status(settings) if c.name == "stream")
    assert line.state == "up", line.line()
