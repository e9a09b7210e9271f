"""The stream's DataFrame -> DataFrame steps: Kafka messages validated, then parsed (or rejected), and
the lake's partition column.

Input is Kafka's column set (key, value, topic, partition, offset, timestamp). Which facts count and how
a minute is aggregated are SQL both layers run in PostgreSQL (`spark.minute_metrics`), not Spark code.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark.event_schema import REFUND_SCHEMA, TRANSACTION_SCHEMA
from spark.validation import Dimensions, EventType, validate_batches

# Events whose 1-minute window ended more than this before the latest event time of their topic are
# late: the speed layer's metrics leave them out, the raw tables and the lake keep them,
# ops.late_events counts them.
WATERMARK_DELAY_S = 300

_VALIDATION_COLUMNS = [
    StructField("event_json", StringType()),
    StructField("reason", StringType()),
    StructField("error", StringType()),
]


def validate_messages(
    messages: DataFrame, event_type: EventType, dimensions: Dimensions, future_tolerance_s: float = 300.0
) -> DataFrame:
    """Kafka messages plus `event_json` (normalized, when valid) or `reason` and `error` (when not)."""
    schema = StructType([*messages.schema.fields, *_VALIDATION_COLUMNS])
    return messages.mapInArrow(validate_batches(event_type, dimensions, future_tolerance_s), schema)


# Columns `parsed_or_rejected` adds for a rejected message (null on a valid one); prefixed because
# events have fields of their own named `reason` (refunds).
REJECTION_COLUMNS = ("rejected_topic", "rejected_reason", "rejected_error", "rejected_payload")


def parsed_or_rejected(validated: DataFrame, event_type: EventType) -> DataFrame:
    """Every validated message in one frame, so a sink converts its batch once: a valid message with the
    event's columns and its Kafka coordinates (the lake's columns, `spark.lake.event_schema`) and null
    rejection columns; a rejected one with null event columns and its dead letter's topic, reason,
    error and payload in `rejected_topic`, `rejected_reason`, `rejected_error`, `rejected_payload`."""
    schema = TRANSACTION_SCHEMA if event_type == "transaction" else REFUND_SCHEMA
    rejected = F.col("reason").isNotNull()
    return validated.select(
        F.from_json("event_json", schema).alias("event"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.when(rejected, F.col("topic")).alias("rejected_topic"),
        F.col("reason").alias("rejected_reason"),
        F.col("error").alias("rejected_error"),
        F.when(rejected, F.col("value")).alias("rejected_payload"),
    ).select("event.*", "kafka_partition", "kafka_offset", *REJECTION_COLUMNS)


def with_event_date(events: DataFrame) -> DataFrame:
    """The lake's partition column (UTC date of the event)."""
    return events.withColumn("event_date", F.to_date("event_ts"))
