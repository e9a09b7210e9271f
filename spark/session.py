"""The SparkSession of the speed layer (and, later, the batch job), configured from settings.

pyspark launches a JVM through spark-submit: it needs JAVA_HOME (see `retail.java`) and,
for Python workers, PYSPARK_PYTHON pointing at this interpreter so they import the same venv (pyarrow,
kafka-python, psycopg, this project). Both are set here, from settings, before the JVM starts.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from retail.java import spark_java_home
from retail.settings import Settings
from retail.spark_conf import cluster_conf

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# The speed layer's application name, as the cluster master lists it.
STREAM_APP = "retail-speed-layer"


def local_bind_address(settings: Settings, master: str | None = None) -> str | None:
    """The address the driver (and so its UI, which binds SPARK_LOCAL_IP or else 0.0.0.0) binds when
    nothing beyond this machine must reach it: a local master, or a cluster master on loopback. None
    for a remote cluster, whose executors connect back to the driver."""
    url = master or settings.spark_master
    if url.startswith("local"):
        return settings.host
    host = urlsplit(url).hostname
    return settings.host if host in _LOOPBACK else None


def spark_session(
    settings: Settings,
    app_name: str = STREAM_APP,
    *,
    master: str | None = None,
    ui: bool = True,
    conf: dict[str, str] | None = None,
    cores: int | None = None,
) -> SparkSession:
    """Build (or return the running) SparkSession; the shuffle partition count is fixed on purpose:
    a streaming query freezes it into its checkpoint on the first run. On a spark:// master the
    application takes at most `cores` (default: the stream's share, RETAIL_SPARK_STREAM_CORES)."""
    os.environ["JAVA_HOME"] = str(spark_java_home(settings))
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    bind = local_bind_address(settings, master)
    if bind and "SPARK_LOCAL_IP" not in os.environ:
        # Spark UI on settings.host (127.0.0.1), not every interface; applies when this starts the JVM.
        os.environ["SPARK_LOCAL_IP"] = bind
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "true" if ui else "false")
        .config("spark.ui.port", str(settings.spark_ui_port))
        .config("spark.ui.showConsoleProgress", "false")
        # Arrow is how batches reach the driver (toArrow) and how the Kafka source hands records over.
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        # The metrics query joins two watermarked inputs (transactions, refunds): the watermark follows
        # the latest event time of either, as ops.late_events' rule does (the default "min" would let
        # an idle refunds topic hold every window open).
        .config("spark.sql.streaming.multipleWatermarkPolicy", "max")
        # Python workers (Kafka source, validation) start slowly on a busy 2-core machine; the 15 s
        # default made queries fail with "Python worker failed to connect back".
        .config("spark.python.authenticate.socketTimeout", "120s")
        .config("spark.sql.streaming.minBatchesToRetain", "20")
    )
    # Under spark-submit (the batch DAG's SparkSubmitOperator) the JVM is already up with the master of
    # its --master (the Airflow connection): a master set here would override it.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = master or settings.spark_master_url
        builder = builder.master(master)
        if master.startswith("spark://"):
            for key, value in cluster_conf(settings, cores or settings.spark_stream_cores).items():
                builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
