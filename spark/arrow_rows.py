"""The speed layer's micro-batch rows, built on the driver from one Arrow table per batch.

A sink converts its batch to Arrow once (`toArrow`: one Spark job that reads, validates and parses the
batch) and derives every output from that table here, with pyarrow compute kernels (columnar, no Python
row objects): the valid events (the lake's columns, as `spark.transformations.parse_transactions` /
`parse_refunds` produce them), the raw tables' rows and the dead letters. `item_rows` is the Arrow twin
of `transformations.explode_items` (the batch job's); tests/spark/test_transformations.py checks that
both give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark.transformations import REFUND_ROW_COLUMNS, REJECTION_COLUMNS

KAFKA_COLUMNS = ("kafka_partition", "kafka_offset")
# ops.dead_letter's columns, from `transformations.parsed_or_rejected`'s rejection columns.
_DEAD_LETTER_NAMES = {
    "rejected_topic": "topic",
    "kafka_partition": "kafka_partition",
    "kafka_offset": "kafka_offset",
    "rejected_reason": "reason",
    "rejected_error": "error",
    "rejected_payload": "payload",
}


@dataclass(frozen=True)
class SplitBatch:
    """One micro-batch split into valid events (lake columns) and dead letters."""

    events: pa.Table
    dead_letters: pa.Table


def split_batch(parsed: pa.Table) -> SplitBatch:
    """Split the Arrow form of `transformations.parsed_or_rejected` by its `rejected_reason` column."""
    rejected = pc.is_valid(parsed["rejected_reason"])
    event_columns = [name for name in parsed.column_names if name not in REJECTION_COLUMNS]
    dead_letters = parsed.filter(rejected).select(list(_DEAD_LETTER_NAMES))
    return SplitBatch(
        events=parsed.filter(pc.invert(rejected)).select(event_columns),
        dead_letters=dead_letters.rename_columns(list(_DEAD_LETTER_NAMES.values())),
    )


def basket_rows(transactions: pa.Table) -> pa.Table:
    """raw.transactions: one row per basket (`transformations.transaction_rows`)."""
    columns = ["transaction_id", "event_id", "event_ts", "store_id", "customer_id", "channel"]
    table = transactions.select([*columns, "payment_method"])
    table = table.append_column("line_count", pc.list_value_length(transactions["items"]).cast(pa.int32()))
    for name in ("schema_version", *KAFKA_COLUMNS):
        table = table.append_column(name, transactions[name])
    return table


def item_rows(transactions: pa.Table, with_source: bool = False) -> pa.Table:
    """raw.transaction_items: one row per line, numbered from 1 within its basket, a missing discount
    as 0 (`transformations.explode_items` without its `is_first_product_line` helper column).

    `with_source` adds the basket's Kafka coordinates, so the sink inserts only the lines of baskets its
    insert accepted (a duplicate transaction or event id must not add lines to another basket)."""
    items = transactions["items"].combine_chunks()
    lines = pc.list_flatten(items)
    lengths = pc.list_value_length(items).fill_null(0).to_numpy(zero_copy_only=False)
    parents = pa.array(np.repeat(np.arange(len(lengths)), lengths))
    # A line's number: its flat position minus the flat position where its basket's lines start, + 1.
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    line_number = pa.array((np.arange(len(lines)) - starts + 1).astype(np.int32))
    discount = lines.field("discount")
    source = {name: pc.take(transactions[name], parents) for name in KAFKA_COLUMNS} if with_source else {}
    return pa.table(
        {
            "transaction_id": pc.take(transactions["transaction_id"], parents),
            "line_number": line_number,
            "product_id": lines.field("product_id"),
            "quantity": lines.field("quantity"),
            "unit_price": lines.field("unit_price"),
            "discount": pc.coalesce(discount, pa.scalar(0, discount.type)),
            "event_ts": pc.take(transactions["event_ts"], parents),
            "store_id": pc.take(transactions["store_id"], parents),
            **source,
        }
    )


def refund_rows(refunds: pa.Table) -> pa.Table:
    """raw.refunds (`transformations.refund_rows`)."""
    return refunds.select(list(REFUND_ROW_COLUMNS))


def without_records(events: pa.Table, records: set[tuple[int, int]]) -> pa.Table:
    """`events` minus those read from the given Kafka (partition, offset) records."""
    if not records:
        return events
    keep = [
        (partition, offset) not in records
        for partition, offset in zip(
            events["kafka_partition"].to_pylist(), events["kafka_offset"].to_pylist(), strict=True
        )
    ]
    return events.filter(pa.array(keep, pa.bool_()))
