"""Pure DataFrame -> DataFrame transformations shared by the streaming job and the batch job.

Input of the stream is Kafka's column set (key, value, topic, partition, offset, timestamp); the batch
layer starts from the lake, which holds the output of `parse_transactions` / `parse_refunds`. Both call
the same `explode_items`, `metric_contributions` and `minute_metrics`, so the two layers can only differ
by late data.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark.event_schema import REFUND_SCHEMA, TRANSACTION_SCHEMA
from spark.validation import Dimensions, EventType, validate_batches

WINDOW = "1 minute"
# Events whose 1-minute window ended more than this before the latest event time seen are late:
# Spark's aggregation drops them, the raw tables and the lake keep them, ops.late_events counts them.
WATERMARK_DELAY = "5 minutes"
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


def valid_messages(validated: DataFrame) -> DataFrame:
    return validated.where(F.col("reason").isNull())


def dead_letters(validated: DataFrame) -> DataFrame:
    """Rows for ops.dead_letter: everything the contract or the dimensions refused."""
    return validated.where(F.col("reason").isNotNull()).select(
        "topic",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        "reason",
        "error",
        F.col("value").alias("payload"),
    )


# Columns `parsed_or_rejected` adds for a rejected message (null on a valid one); prefixed because
# events have fields of their own named `reason` (refunds).
REJECTION_COLUMNS = ("rejected_topic", "rejected_reason", "rejected_error", "rejected_payload")


def parsed_or_rejected(validated: DataFrame, event_type: EventType) -> DataFrame:
    """Every validated message in one frame, so a sink converts its batch once: a valid message as
    `parse_transactions` / `parse_refunds` gives it (event columns, Kafka coordinates) with null
    rejection columns; a rejected one with null event columns and the `dead_letters` values in
    `rejected_topic`, `rejected_reason`, `rejected_error`, `rejected_payload`."""
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


def _parse(valid: DataFrame, schema: StructType) -> DataFrame:
    return valid.select(
        F.from_json("event_json", schema).alias("event"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
    ).select("event.*", "kafka_partition", "kafka_offset")


def parse_transactions(valid: DataFrame) -> DataFrame:
    """One row per basket with the contract's columns (items as an array) and its Kafka coordinates:
    the lake's transactions dataset."""
    return _parse(valid, TRANSACTION_SCHEMA)


def parse_refunds(valid: DataFrame) -> DataFrame:
    return _parse(valid, REFUND_SCHEMA)


def with_event_date(events: DataFrame) -> DataFrame:
    """The lake's partition column (UTC date of the event)."""
    return events.withColumn("event_date", F.to_date("event_ts"))


def transaction_rows(transactions: DataFrame) -> DataFrame:
    """raw.transactions: one row per basket."""
    return transactions.select(
        "transaction_id",
        "event_id",
        "event_ts",
        "store_id",
        "customer_id",
        "channel",
        "payment_method",
        F.size("items").alias("line_count"),
        "schema_version",
        "kafka_partition",
        "kafka_offset",
    )


def explode_items(transactions: DataFrame) -> DataFrame:
    """raw.transaction_items: one row per line, numbered from 1, plus `is_first_product_line`, true on
    the first line of each product in its basket, so that summing it counts transactions per product
    without a (streaming-unsupported) distinct count."""
    exploded = transactions.select(
        "transaction_id",
        "event_ts",
        "store_id",
        F.col("items.product_id").alias("_basket_products"),
        F.posexplode("items").alias("_position", "item"),
    )
    return exploded.select(
        "transaction_id",
        (F.col("_position") + 1).alias("line_number"),
        F.col("item.product_id").alias("product_id"),
        F.col("item.quantity").alias("quantity"),
        F.col("item.unit_price").alias("unit_price"),
        F.coalesce(F.col("item.discount"), F.lit(0).cast("decimal(12,2)")).alias("discount"),
        "event_ts",
        "store_id",
        (
            F.array_position(F.slice("_basket_products", 1, F.col("_position") + 1), F.col("item.product_id"))
            == F.col("_position") + 1
        ).alias("is_first_product_line"),
    )


REFUND_ROW_COLUMNS = (
    "refund_id",
    "event_id",
    "transaction_id",
    "product_id",
    "quantity",
    "amount",
    "reason",
    "event_ts",
    "schema_version",
    "kafka_partition",
    "kafka_offset",
)


def refund_rows(refunds: DataFrame) -> DataFrame:
    """raw.refunds."""
    return refunds.select(*REFUND_ROW_COLUMNS)


def _money(column: Column) -> Column:
    return column.cast("decimal(18,2)")


def metric_contributions(items: DataFrame, refunds: DataFrame) -> DataFrame:
    """Sales lines and refunds in one shape, each row contributing to its product's minute."""
    sales = items.select(
        "event_ts",
        "product_id",
        F.col("quantity").cast("long").alias("units"),
        _money(F.col("quantity") * F.col("unit_price")).alias("gross_revenue"),
        _money(F.col("discount")).alias("discount"),
        F.col("is_first_product_line").cast("long").alias("transactions"),
        F.lit(0).cast("long").alias("refunds"),
        _money(F.lit(0)).alias("refund_amount"),
    )
    returned = refunds.select(
        "event_ts",
        "product_id",
        F.lit(0).cast("long").alias("units"),
        _money(F.lit(0)).alias("gross_revenue"),
        _money(F.lit(0)).alias("discount"),
        F.lit(0).cast("long").alias("transactions"),
        F.lit(1).cast("long").alias("refunds"),
        _money(F.col("amount")).alias("refund_amount"),
    )
    return sales.unionByName(returned)


def deduplicated(events: DataFrame) -> DataFrame:
    """A stream of parsed events with the watermark set and repeated event ids dropped (state is kept
    per event id until the watermark passes it). The batch layer uses `dropDuplicates(["event_id"])`."""
    return events.withWatermark("event_ts", WATERMARK_DELAY).dropDuplicatesWithinWatermark(["event_id"])


def minute_metrics(contributions: DataFrame) -> DataFrame:
    """Per product and 1-minute tumbling event-time window: the columns of *.product_metrics_minute.
    On a stream, the inputs carry the watermark (`deduplicated`)."""
    return (
        contributions.groupBy(F.window("event_ts", WINDOW).alias("window"), "product_id")
        .agg(
            F.sum("units").alias("units"),
            _money(F.sum("gross_revenue")).alias("gross_revenue"),
            _money(F.sum("discount")).alias("discount"),
            F.sum("transactions").alias("transactions"),
            F.sum("refunds").alias("refunds"),
            _money(F.sum("refund_amount")).alias("refund_amount"),
        )
        .select(
            F.col("window.start").alias("window_start"),
            "product_id",
            "units",
            "gross_revenue",
            "discount",
            "transactions",
            "refunds",
            "refund_amount",
        )
    )
