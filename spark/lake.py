"""The lake: every valid event appended as Parquet, partitioned by event date, one dataset per event type.

It is the master dataset the batch layer recomputes from (the columns of `event_schema` plus
`event_date`). Exactly once in two steps (README: Exactly-once protocol): a raw query hands its batch's
valid events to a spool folder as one Parquet file (`LakeSpool`), named from the query id, batch id and
offsets, so a replayed batch rewrites the same file; the lake query (`start_lake_query`), a Spark file
stream with no Kafka read and no Python, packs spool files into the lake and makes the append exactly
once through the file sink's `_spark_metadata` log.

`settings.lake` is a local folder by default or any Hadoop-compatible URI (s3a://...); the spool is
written with pyarrow's file systems (local, s3://, s3a:// as s3://, gs://, hdfs://, abfs://).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import IntegerType, LongType, StructField, StructType

from retail.settings import Settings
from spark.event_schema import REFUND_SCHEMA, TRANSACTION_SCHEMA
from spark.transformations import with_event_date

DATASETS = ("transactions", "refunds")


def dataset_path(settings: Settings, dataset: str) -> str:
    return f"{settings.lake.rstrip('/')}/{dataset}"


def spool_path(settings: Settings, dataset: str) -> str:
    """Where the raw query hands a dataset's events to its lake query (stream state, like checkpoints)."""
    return f"{settings.checkpoint_dir.rstrip('/')}/lake_spool/{dataset}"


def event_schema(dataset: str) -> StructType:
    """The lake's columns without `event_date`: an event's contract fields and its Kafka coordinates."""
    contract = TRANSACTION_SCHEMA if dataset == "transactions" else REFUND_SCHEMA
    return StructType(
        [
            *contract.fields,
            StructField("kafka_partition", IntegerType()),
            StructField("kafka_offset", LongType()),
        ]
    )


def _filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return fs.LocalFileSystem(), parts.path if parts.scheme else uri
    # Hadoop's S3 connectors name the scheme s3a/s3n; pyarrow's S3 file system calls it s3.
    scheme = "s3" if parts.scheme in ("s3a", "s3n") else parts.scheme
    return fs.FileSystem.from_uri(urlunsplit((scheme, *parts[1:])))


@dataclass
class LakeSpool:
    """The spool folder of one dataset: the raw query writes one Parquet file per micro-batch."""

    uri: str
    _fs: fs.FileSystem | None = field(default=None, init=False, repr=False)
    _path: str = field(default="", init=False, repr=False)

    def _location(self) -> tuple[fs.FileSystem, str]:
        if self._fs is None:
            self._fs, self._path = _filesystem(self.uri)
            self._fs.create_dir(self._path, recursive=True)
        return self._fs, self._path

    def write(self, query_id: str, batch_id: int, events: pa.Table) -> str:
        """Write a batch's valid events; returns the file's path. Same batch, same events: same file."""
        filesystem, folder = self._location()
        partitions = events["kafka_partition"].to_numpy().astype(np.int64)
        offsets = events["kafka_offset"].to_numpy().astype(np.int64)
        order = np.lexsort((offsets, partitions))  # the digest must not depend on the row order
        digest = hashlib.blake2b(partitions[order].tobytes() + offsets[order].tobytes(), digest_size=8)
        name = f"batch-{batch_id:012d}-{query_id}-{digest.hexdigest()}.parquet"
        # Spark's file source skips names starting with "." while they are written.
        hidden = f"{folder}/.{name}.tmp"
        with filesystem.open_output_stream(hidden) as out:
            pq.write_table(events, out)
        filesystem.move(hidden, f"{folder}/{name}")
        return f"{folder}/{name}"


def start_lake_query(
    spark: SparkSession, settings: Settings, dataset: str, query_name: str, checkpoint: str, trigger_s: float
) -> StreamingQuery:
    """Append the spooled events (late ones included) to `<lake>/<dataset>/event_date=YYYY-MM-DD/`."""
    spool = spool_path(settings, dataset)
    # The file source needs its folder before the raw query's first hand-over.
    filesystem, folder = _filesystem(spool)
    filesystem.create_dir(folder, recursive=True)
    events = (
        spark.readStream.schema(event_schema(dataset))
        # Spool files are deleted once the lake batch that read them committed.
        .option("cleanSource", "delete")
        .parquet(spool)
    )
    writer = (
        # One task: a file per date and lake batch, and the other cores stay free for the raw queries.
        with_event_date(events)
        .coalesce(1)
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
