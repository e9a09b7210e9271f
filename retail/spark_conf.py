"""Spark configuration an application needs on a cluster, shared by the stream, `retail batch` and the
batch DAGs' SparkSubmitOperator (no pyspark import: DAG files build their operators from it).

Executors are JVMs of their own (on other machines, on a real cluster), so whatever they need travels as
configuration: the Python they start for Python workers, the import path that finds this project, the
address they reach the driver at. `spark.cores.max` caps each application's share of the cluster, so the
stream never takes the cores the batch job needs.
"""

from __future__ import annotations

import sys

from retail.settings import PROJECT_ROOT, Settings


def cluster_conf(settings: Settings, cores: int) -> dict[str, str]:
    """spark.* settings of one application taking at most `cores` cores of a standalone cluster."""
    conf = {
        "spark.cores.max": str(cores),
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.pyspark.python": settings.spark_executor_python or sys.executable,
        "spark.executorEnv.PYTHONPATH": settings.spark_executor_pythonpath or str(PROJECT_ROOT),
    }
    # The local cluster listens on RETAIL_HOST only; elsewhere Spark's default (this machine's name)
    # is what executors on other machines (or containers) can reach, unless a setting says otherwise.
    driver_host = settings.spark_driver_host or (settings.host if settings.spark_cluster else None)
    if driver_host:
        conf["spark.driver.host"] = driver_host
    return conf
