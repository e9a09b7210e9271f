"""The local Spark cluster's services and the configuration an application takes to a cluster."""

from __future__ import annotations

import sys
from pathlib import Path

from retail.settings import PROJECT_ROOT
from retail.spark_conf import cluster_conf
from stack import spark_cluster, stack, stream_service
from tests.scratch import free_port, scratch_settings


def test_cluster_runs_before_the_stream_bound_to_the_stack_host(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / ".retail", spark_cluster=True, stream_enabled=True)
    names = [service.name for service in stack.services(settings)]
    assert names.index("spark-master") < names.index("spark-worker") < names.index("stream")
    by_name = {service.name: service for service in stack.services(settings)}
    master, worker = by_name["spark-master"], by_name["spark-worker"]
    assert master.command[1].endswith("deploy.master.Master")
    assert worker.command[1:3] == ["org.apache.spark.deploy.worker.Worker", settings.spark_master_url]
    for service in (master, worker):
        host = service.command[service.command.index("--host") + 1]
        assert host == "127.0.0.1"
        assert service.environment["SPARK_LOCAL_IP"] == "127.0.0.1"  # the web UIs bind to it
    assert "spark-master" not in [s.name for s in stack.services(scratch_settings(tmp_path / "off"))]


def test_cluster_conf_carries_what_executors_need(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / ".retail", spark_cluster=True)
    conf = cluster_conf(settings, 3)
    assert conf["spark.cores.max"] == "3"
    assert conf["spark.pyspark.python"] == sys.executable
    assert conf["spark.executorEnv.PYTHONPATH"] == str(PROJECT_ROOT)
    assert conf["spark.driver.host"] == "127.0.0.1"
    remote = scratch_settings(
        tmp_path / ".remote",
        spark_master="spark://master.example:7077",
        spark_executor_python="/opt/retail/.venv/bin/python",
        spark_executor_pythonpath="/opt/retail",
        spark_driver_host="10.0.0.5",
    )
    conf = cluster_conf(remote, remote.spark_batch_cores)
    assert conf["spark.pyspark.python"] == "/opt/retail/.venv/bin/python"
    assert conf["spark.executorEnv.PYTHONPATH"] == "/opt/retail"
    assert conf["spark.driver.host"] == "10.0.0.5"
    assert remote.spark_master_url == "spark://master.example:7077"
    # Off the local cluster, Spark's default driver address (the host name) unless a setting names one.
    assert "spark.driver.host" not in cluster_conf(remote.model_copy(update={"spark_driver_host": None}), 1)


def test_master_keeps_its_records_in_the_state_folder_until_a_cold_start(tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / "state with space", spark_cluster=True)
    master = next(service for service in stack.services(settings) if service.name == "spark-master")
    properties = Path(master.command[master.command.index("--properties-file") + 1])
    lines = properties.read_text().splitlines()
    recovery = spark_cluster.recovery_dir(settings)
    assert lines == ["spark.deploy.recoveryMode=FILESYSTEM", f"spark.deploy.recoveryDirectory={recovery}"]
    assert recovery.is_relative_to(settings.state_dir) and recovery.is_dir()
    (recovery / "app_app-1").write_bytes(b"stale")
    spark_cluster.forget_recovery_state(settings)
    assert recovery.is_dir() and not list(recovery.iterdir())


def _master(status: str = "ALIVE", *apps: dict) -> dict:
    return {"url": "spark://127.0.0.1:7077", "status": status, "activeapps": list(apps)}


def test_an_application_the_master_does_not_know_is_failed() -> None:
    name = "retail-speed-layer"
    running = {"id": "app-2", "name": name, "state": "RUNNING", "cores": 2}
    assert spark_cluster.application_problem(_master("ALIVE", running), name) is None
    state, reason = spark_cluster.application_problem(_master("ALIVE", {**running, "name": "other"}), name)
    assert state == "failed"
    assert reason == f"application {name} is not registered with the Spark master spark://127.0.0.1:7077"
    waiting = {**running, "state": "WAITING", "cores": 0}
    assert spark_cluster.application_problem(_master("ALIVE", waiting), name) == (
        "degraded",
        f"application {name} holds no executors (WAITING)",
    )
    assert spark_cluster.application_problem(_master("RECOVERING", running), name) == (
        "degraded",
        "Spark master is RECOVERING",
    )


def test_a_running_stream_is_not_ok_while_the_master_does_not_answer(tmp_path: Path) -> None:
    """Nothing listens on the scratch ports: no database to read, no master to ask."""
    settings = scratch_settings(
        tmp_path / ".retail", spark_cluster=True, stream_enabled=True, spark_master_ui_port=free_port()
    )
    health = stream_service.health(settings, running=True)
    assert health is not None and health.state == "degraded"
    assert health.reason.startswith(
        f"Spark master not answering at its UI port {settings.spark_master_ui_port}"
    )
    assert stream_service.health(settings, running=False) is None  # a stopped job: the process state says it
