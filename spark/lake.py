"""The lake: every valid event appended as Parquet, partitioned by event date, one dataset per event type.

It is the master dataset the batch layer recomputes from. Spark's file sink makes the append exactly-once
through its own metadata log (`<dataset>/_spark_metadata`) and its own checkpoint: a batch replayed after
a crash is not written twice, and files of a batch that never committed are not listed in the log (read
the datasets with Spark, which honours the log; raw duplicates sent by the producer remain and are
dropped by event_id downstream). `settings.lake` is a local folder by default or any Hadoop-compatible
URI (s3a://...) when set.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from retail.settings import Settings
from spark.transformations import with_event_date

DATASETS = ("transactions", "refunds")


def dataset_path(settings: Settings, dataset: str) -> str:
    return f"{settings.lake.rstrip('/')}/{dataset}"


def start_lake_query(
    events: DataFrame, settings: Settings, dataset: str, query_name: str, checkpoint: str, trigger_s: float
) -> StreamingQuery:
    """Append parsed events (late ones included) to `<lake>/<dataset>/event_date=YYYY-MM-DD/`."""
    writer = (
        with_event_date(events)
        .writeStream.format("parquet")
        .queryName(query_name)
        .outputMode("append")
        .partitionBy("event_date")
        .option("path", dataset_path(settings, dataset))
        .option("checkpointLocation", checkpoint)
    )
    if trigger_s > 0:
        writer = writer.trigger(processingTime=f"{trigger_s} seconds")
    return writer.start()
