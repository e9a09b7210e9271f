"""A Spark standalone cluster on this machine (RETAIL_SPARK_CLUSTER=true): a master and one worker run
from the pyspark wheel's `spark-class`, supervised like every other service.

Everything binds to RETAIL_HOST (127.0.0.1): the RPC endpoints through `--host`, the web UIs through
SPARK_LOCAL_IP, which Spark's UI server binds to (0.0.0.0 without it). The worker takes a random RPC port,
so a worker restarted after a crash registers as a new worker instead of waiting for the master to time
the old one out. Executors are the worker's child JVMs; they die with it, and the master gives their
applications new ones once the restarted worker has registered.
"""

from __future__ import annotations

from pathlib import Path

from retail.settings import Settings
from stack.errors import StackError
from stack.service import Service, http_json

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    import pyspark  # the wheel is Spark's distribution: bin/spark-class and the jars

    return Path(pyspark.__file__).parent


def spark_class() -> Path:
    binary = spark_home() / "bin" / "spark-class"
    if not binary.is_file():
        raise StackError(f"spark-class missing at {binary}; reinstall pyspark with `make install`")
    return binary


def _environment(settings: Settings) -> dict[str, str]:
    from retail.java import spark_java_home

    return {
        "JAVA_HOME": str(spark_java_home(settings)),
        "SPARK_HOME": str(spark_home()),
        # The web UIs bind to SPARK_LOCAL_IP (all interfaces without it).
        "SPARK_LOCAL_IP": settings.host,
        # Each application leaves a folder of executor logs in the work dir (the hourly batch job 24 a
        # day): the worker deletes those of finished applications after Spark's TTL (7 days).
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true",
    }


def work_dir(settings: Settings) -> Path:
    """Where the worker keeps each executor's folder and log (stdout, stderr)."""
    return settings.state_dir / "spark" / "work"


def master_state(settings: Settings) -> dict:
    """The master's JSON status page: its workers and applications."""
    return http_json(f"http://{settings.host}:{settings.spark_master_ui_port}/json/")


def _master_health(settings: Settings) -> None:
    state = master_state(settings)
    if state.get("status") != "ALIVE":
        raise RuntimeError(f"Spark master is {state.get('status')}")


def _worker_health(settings: Settings) -> None:
    """Healthy once registered: the worker learns its master's URL only from the registration reply."""
    state = http_json(f"http://{settings.host}:{settings.spark_worker_ui_port}/json/")
    if not state.get("masterurl"):
        raise RuntimeError(f"Spark worker not registered with {settings.spark_master_url} yet")


def services(settings: Settings) -> list[Service]:
    """The master, then the worker (which needs the master to register)."""
    binary = str(spark_class())
    environment = _environment(settings)
    work_dir(settings).mkdir(parents=True, exist_ok=True)
    master = Service(
        name="spark-master",
        command=[
            binary,
            MASTER_CLASS,
            "--host",
            settings.host,
            "--port",
            str(settings.spark_master_port),
            "--webui-port",
            str(settings.spark_master_ui_port),
        ],
        health_check=lambda: _master_health(settings),
        port=settings.spark_master_port,
        port_setting="RETAIL_SPARK_MASTER_PORT",
        url=f"http://{settings.host}:{settings.spark_master_ui_port}",
        environment=environment,
        directory=str(settings.state_dir),
    )
    worker = Service(
        name="spark-worker",
        command=[
            binary,
            WORKER_CLASS,
            settings.spark_master_url,
            "--host",
            settings.host,
            "--port",
            "0",
            "--webui-port",
            str(settings.spark_worker_ui_port),
            "--cores",
            str(settings.spark_worker_cores),
            "--memory",
            settings.spark_worker_memory,
            "--work-dir",
            str(work_dir(settings)),
        ],
        health_check=lambda: _worker_health(settings),
        port=settings.spark_worker_ui_port,
        port_setting="RETAIL_SPARK_WORKER_UI_PORT",
        url=f"http://{settings.host}:{settings.spark_worker_ui_port}",
        environment=environment,
        directory=str(settings.state_dir),
    )
    return [master, worker]
