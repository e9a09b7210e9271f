"""A Spark standalone cluster on this machine (RETAIL_SPARK_CLUSTER=true): a master and one worker run
from the pyspark wheel's `spark-class`, supervised like every other service.

Everything binds to RETAIL_HOST (127.0.0.1): the RPC endpoints through `--host`, the web UIs through
SPARK_LOCAL_IP, which Spark's UI server binds to (0.0.0.0 without it). The worker takes a random RPC port,
so a worker restarted after a crash registers as a new worker instead of waiting for the master to time
the old one out. Executors are the worker's child JVMs; they die with it, and the master gives their
applications new ones once the restarted worker has registered.

The master keeps its registered workers and applications in `recovery_dir` (Spark's FILESYSTEM recovery
mode): restarted after a crash, it tells them it is back, and they carry on with the executors they hold.
Without it the worker registers anew, the master kills the executors it does not know, and the
applications wait forever for a master that has never heard of them.
"""

from __future__ import annotations

import shutil
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


def recovery_dir(settings: Settings) -> Path:
    """Where the master records its workers and applications, to take them back after a crash."""
    return settings.state_dir / "spark" / "recovery"


def forget_recovery_state(settings: Settings) -> None:
    """For a cold start of the cluster: entries of workers and applications that are gone would hold
    the new master in RECOVERING (no executors for anyone) until they time out, a minute."""
    recovery = recovery_dir(settings)
    if recovery.exists():
        shutil.rmtree(recovery)
    recovery.mkdir(parents=True)


def _master_properties(settings: Settings) -> Path:
    """The master's properties file (a file, not -D options: the state folder's path may hold spaces)."""
    recovery = recovery_dir(settings)
    recovery.mkdir(parents=True, exist_ok=True)
    properties = settings.state_dir / "spark" / "master.properties"
    escaped = str(recovery).replace("\\", "\\\\")
    properties.write_text(
        f"spark.deploy.recoveryMode=FILESYSTEM\nspark.deploy.recoveryDirectory={escaped}\n", encoding="utf-8"
    )
    return properties


def master_state(settings: Settings) -> dict:
    """The master's JSON status page: its workers and applications."""
    return http_json(f"http://{settings.host}:{settings.spark_master_ui_port}/json/")


def application_problem(state: dict, name: str) -> tuple[str, str] | None:
    """(health state, reason) when application `name` cannot progress on the master whose JSON page is
    `state`; None when it is registered and holds executors. Its executors carry on while the master
    restarts, so that is degraded; an application the master does not know gets no executors again."""
    if state.get("status") != "ALIVE":
        return "degraded", f"Spark master is {state.get('status')}"
    apps = [app for app in state.get("activeapps", []) if app.get("name") == name]
    if not apps:
        return "failed", f"application {name} is not registered with the Spark master {state.get('url')}"
    if not apps[-1].get("cores"):
        return "degraded", f"application {name} holds no executors ({apps[-1].get('state')})"
    return None


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
            "--properties-file",
            str(_master_properties(settings)),
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
