"""Validate Kafka messages against the shared event contract, in Spark's Python workers.

The contract (`retail.contracts`, pydantic) is the one definition of a valid event, so validation runs it
literally instead of re-stating its rules in Spark SQL: every message is checked with
`model_validate_json` inside `mapInArrow` (Arrow batches in, Arrow batches out), and then its product and
store ids are checked against the dimension tables. A valid message leaves as the contract's normalized
JSON (UTC timestamps, exact money), which Spark then parses with the derived schema; an invalid one leaves
with a reason code and the error text for `ops.dead_letter`.

A message is refused per record, whatever its bytes: any exception one record raises becomes a dead
letter (`unexpected_error`), never a failed task, because a failed task is re-read after the restart
and fails again. Reason codes are listed in `REASONS`; the README describes each one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow

EventType = Literal["transaction", "refund"]
REASONS = (
    "oversized",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unexpected_field",
    "invalid_timestamp",
    "future_event",
    "out_of_range",
    "non_finite_number",
    "non_positive_quantity",
    "negative_price",
    "negative_amount",
    "invalid_value",
    "unknown_product",
    "unknown_store",
    # Decided by the sink against the raw tables (`spark.postgres_sink`).
    "duplicate_transaction_id",
    "duplicate_event_id",
    "duplicate_refund_id",
    "unexpected_error",
)
# Reasons a later fix can cure (a dimension row loaded later): what `retail dlq replay` is for.
FIXABLE_REASONS = ("unknown_product", "unknown_store")
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class StaticDimensions:
    """Known ids given up front: unit tests and the batch layer (which reads them once per run)."""

    products: frozenset[str]
    stores: frozenset[str]

    def known(self) -> tuple[frozenset[str], frozenset[str]]:
        return self.products, self.stores


_CACHE: dict[str, tuple[float, frozenset[str], frozenset[str]]] = {}


@dataclass(frozen=True)
class PostgresDimensions:
    """Known ids read from raw.products / raw.stores by each worker, reused for `refresh_s` seconds.

    Read in the worker (not broadcast once at query start) so a product loaded while the stream runs is
    accepted within `refresh_s`, in every query alike."""

    dsn: str = field(repr=False)
    refresh_s: float = 10.0

    def known(self) -> tuple[frozenset[str], frozenset[str]]:
        cached = _CACHE.get(self.dsn)
        if cached and time.monotonic() - cached[0] < self.refresh_s:
            return cached[1], cached[2]
        import psycopg

        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            products = frozenset(r[0] for r in conn.execute("select product_id from raw.products"))
            stores = frozenset(r[0] for r in conn.execute("select store_id from raw.stores"))
        _CACHE[self.dsn] = (time.monotonic(), products, stores)
        return products, stores


Dimensions = StaticDimensions | PostgresDimensions


_OUT_OF_RANGE = {
    "less_than",
    "less_than_equal",
    "too_long",
    "decimal_max_digits",
    "decimal_whole_digits",
    "amount_out_of_range",
}


def reason_for(error: dict) -> str:
    """Map one pydantic error to a dead-letter reason code."""
    kind = error["type"]
    field_name = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "json_invalid":
        return "invalid_json"
    if kind in {"model_type", "model_attributes_type"} and not error["loc"]:
        return "not_an_object"
    if kind == "missing":
        return "missing_field"
    if kind == "extra_forbidden":
        return "unexpected_field"
    if field_name == "event_ts":
        return "invalid_timestamp"
    if kind == "finite_number":
        return "non_finite_number"
    if kind in _OUT_OF_RANGE:
        return "out_of_range"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_attributes_type":
        return "wrong_type"
    if field_name == "quantity" and kind in {"greater_than", "greater_than_equal"}:
        return "non_positive_quantity"
    if field_name == "unit_price" and kind == "greater_than_equal":
        return "negative_price"
    if field_name in {"amount", "discount"} and kind == "greater_than_equal":
        return "negative_amount"
    return "invalid_value"


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:_MAX_ERROR_CHARS]


def check_message(
    value: bytes | None,
    event_type: EventType,
    products: frozenset[str],
    stores: frozenset[str],
    record_ts: datetime | None = None,
    future_tolerance: timedelta = timedelta(minutes=5),
) -> tuple[str | None, str | None, str | None]:
    """(normalized JSON, None, None) for a valid message, else (None, reason, error text). Never raises.

    `record_ts` is the Kafka record's own timestamp: an event more than `future_tolerance` after it is
    `future_event` (the record's timestamp is stored in the log, so a replay decides the same)."""
    try:
        return _check(value, event_type, products, stores, record_ts, future_tolerance)
    except Exception as error:  # any record-caused failure is the record's fault: dead-letter it
        return None, "unexpected_error", f"{type(error).__name__}: {error}"[:_MAX_ERROR_CHARS]


def _check(
    value: bytes | None,
    event_type: EventType,
    products: frozenset[str],
    stores: frozenset[str],
    record_ts: datetime | None,
    future_tolerance: timedelta,
) -> tuple[str | None, str | None, str | None]:
    from pydantic import ValidationError

    from retail.contracts import MAX_EVENT_BYTES, RefundEvent, TransactionEvent

    if value is None or len(value) == 0:
        return None, "invalid_json", "empty message value"
    if len(value) > MAX_EVENT_BYTES:
        return None, "oversized", f"message of {len(value)} bytes exceeds MAX_EVENT_BYTES={MAX_EVENT_BYTES}"
    model = TransactionEvent if event_type == "transaction" else RefundEvent
    try:
        event = model.model_validate_json(value)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        return None, reason_for(errors[0]), _describe(errors)
    if record_ts is not None and event.event_ts > record_ts + future_tolerance:
        return (
            None,
            "future_event",
            f"event_ts {event.event_ts.isoformat()} is more than {future_tolerance.total_seconds():.0f}s "
            f"after the Kafka record's timestamp {record_ts.isoformat()}",
        )
    if isinstance(event, TransactionEvent):
        if event.store_id not in stores:
            return None, "unknown_store", f"store_id {event.store_id!r} is not in raw.stores"
        unknown = sorted({item.product_id for item in event.items} - products)
    else:
        unknown = [event.product_id] if event.product_id not in products else []
    if unknown:
        return None, "unknown_product", f"product_id {', '.join(map(repr, unknown))} not in raw.products"
    return event.model_dump_json(), None, None


def _record_time(value: object) -> datetime | None:
    """The Kafka record timestamp as an aware datetime; None when the broker gave none (-1 / null)."""
    if not isinstance(value, datetime) or value.year < 1971:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def validate_batches(
    event_type: EventType, dimensions: Dimensions, future_tolerance_s: float = 300.0
) -> Callable[[Iterator[pyarrow.RecordBatch]], Iterator[pyarrow.RecordBatch]]:
    """The `mapInArrow` function: appends `event_json`, `reason`, `error` to each Kafka record batch."""
    tolerance = timedelta(seconds=future_tolerance_s)

    def validate(batches: Iterator[pyarrow.RecordBatch]) -> Iterator[pyarrow.RecordBatch]:
        import pyarrow as pa

        products, stores = dimensions.known()
        for batch in batches:
            has_times = "timestamp" in batch.schema.names
            times = batch.column("timestamp").to_pylist() if has_times else [None] * batch.num_rows
            results = [
                check_message(value, event_type, products, stores, _record_time(ts), tolerance)
                for value, ts in zip(batch.column("value").to_pylist(), times, strict=True)
            ]
            columns = list(zip(*results, strict=True)) if results else [(), (), ()]
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, *(pa.array(list(c), pa.string()) for c in columns)],
                names=[*batch.schema.names, "event_json", "reason", "error"],
            )

    return validate
