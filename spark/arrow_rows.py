"""Raw-table rows built on the driver from Arrow tables of events, for both layers.

A stream sink converts its batch to Arrow once (`toArrow` of `transformations.parsed_or_rejected`: one
Spark job reads, validates and parses the batch) and derives every output from that table here, with
pyarrow compute kernels (columnar, no Python row objects): the valid events (the lake's columns), the raw
tables' rows and the dead letters. The batch job derives its staged rows from the lake's events with the
same `basket_rows`, `item_rows` and `refund_rows`, so both layers explode baskets into lines alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark.transformations import REJECTION_COLUMNS

KAFKA_COLUMNS = ("kafka_partition", "kafka_offset")
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
    *KAFKA_COLUMNS,
)
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
    """raw.transactions: one row per basket."""
    columns = ["transaction_id", "event_id", "event_ts", "store_id", "customer_id", "channel"]
    table = transactions.select([*columns, "payment_method"])
    table = table.append_column("line_count", pc.list_value_length(transactions["items"]).cast(pa.int32()))
    for name in ("schema_version", *KAFKA_COLUMNS):
        table = table.append_column(name, transactions[name])
    return table


def item_rows(transactions: pa.Table, with_source: bool = False) -> pa.Table:
    """raw.transaction_items: one row per line, numbered from 1 within its basket, a missing discount
    as 0.

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
    """raw.refunds."""
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
