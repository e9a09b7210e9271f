"""The local Spark cluster's services and the configuration an application takes to a cluster."""

from __future__ import annotations

import sys
from pathlib import Path

from retail.settings import PROJECT_ROOT
from retail.spark_conf import cluster_conf
from stack import stack
from tests.scratch import scratch_settings


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
