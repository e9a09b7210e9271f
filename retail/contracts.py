"""Event contracts: the single definition of what travels through Kafka.

The producer serializes with these models, the speed layer's Spark schema is derived from them
(`spark.event_schema`), the checked-in JSON Schema files in `retail/schemas/` are generated from them,
and tests validate with them. A new field is added here and nowhere else.

Regenerate the JSON Schema files after a change::

    python -m retail.contracts
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_VERSION = 1
MONEY_DIGITS = 12
MONEY_PLACES = 2
# Kafka messages above this size are not retail events; the speed layer dead-letters them unread.
MAX_EVENT_BYTES = 64 * 1024
MAX_BASKET_LINES = 200
MAX_QUANTITY = 10_000
# Event times every layer can represent (Python, Spark, Parquet, Postgres) with room for offsets and
# date arithmetic: historical sales logs (1997) replay, the year-1 and year-9999 edges never arrive.
MIN_EVENT_TS = datetime(1900, 1, 1, tzinfo=UTC)
MAX_EVENT_TS = datetime(2200, 1, 1, tzinfo=UTC)
# A basket's gross amount (sum of quantity × unit_price) at most this: with it, one product's minute
# (numeric(18,2) in speed/batch.product_metrics_minute, decimal(18,2) in the batch job's casts) holds
# 10^6 maximal baskets before it could overflow, and no single line or basket can.
MAX_BASKET_AMOUNT = Decimal("10000000000.00")


def _as_utc(value: datetime) -> datetime:
    """Event times are instants: a naive timestamp would be ambiguous, so it is refused; one outside
    [MIN_EVENT_TS, MAX_EVENT_TS) would overflow a later layer (or Python's own `astimezone`)."""
    if value.tzinfo is None:
        raise ValueError("event_ts must carry a UTC offset (e.g. 2026-11-24T09:30:00Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_EVENT_TS <= utc < MAX_EVENT_TS:
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "event_ts {value} is outside [{low}, {high})",
            {"value": value.isoformat(), "low": MIN_EVENT_TS.isoformat(), "high": MAX_EVENT_TS.isoformat()},
        )
    return utc


def _not_text(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """No silent coercion on the wire: a JSON string (or a boolean) is not a number."""
    if isinstance(value, str | bool):
        raise PydanticCustomError(
            "number_type", "Input should be a number, not {kind}", {"kind": type(value).__name__}
        )
    return handler(value)


def _not_number(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """No silent coercion on the wire: an epoch number is not a timestamp (its unit is a guess)."""
    if isinstance(value, int | float | Decimal):
        raise PydanticCustomError(
            "datetime_type", "Input should be an ISO 8601 timestamp string, not a number"
        )
    return handler(value)


# Money is exact (Decimal) in Python and a JSON number on the wire, so Spark parses it straight into
# DecimalType(12, 2) without a string detour.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES),
    WrapValidator(_not_text),
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "minimum": 0, "multipleOf": 0.01, "maximum": 10**10 - 0.01}),
]
UtcTimestamp = Annotated[datetime, WrapValidator(_not_number), AfterValidator(_as_utc)]
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY), WrapValidator(_not_text), Field(strict=True)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class Channel(StrEnum):
    STORE = "store"
    ONLINE = "online"
    MOBILE_APP = "mobile_app"


class PaymentMethod(StrEnum):
    CARD = "card"
    CASH = "cash"
    MOBILE_WALLET = "mobile_wallet"
    GIFT_CARD = "gift_card"


class RefundReason(StrEnum):
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    CHANGED_MIND = "changed_mind"
    LATE_DELIVERY = "late_delivery"
    OTHER = "other"
    # A return line of a replayed sales log (the log does not say why).
    RETURN = "return"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


class LineItem(_Contract):
    """One basket line; `discount` is the money taken off the whole line, not per unit."""

    product_id: Identifier
    quantity: Quantity
    unit_price: Money
    discount: Money = Decimal("0.00")

    @model_validator(mode="after")
    def _discount_within_line(self) -> LineItem:
        if self.discount > self.quantity * self.unit_price:
            raise ValueError("discount exceeds the line's gross amount (quantity × unit_price)")
        return self

    @property
    def gross_amount(self) -> Decimal:
        return self.quantity * self.unit_price

    @property
    def paid_amount(self) -> Decimal:
        return self.gross_amount - self.discount


class TransactionEvent(_Contract):
    """A completed basket at a store or online; one Kafka message on the transactions topic."""

    event_id: UUID
    transaction_id: Identifier
    event_ts: UtcTimestamp
    store_id: Identifier
    # None for a guest checkout without a loyalty card.
    customer_id: Identifier | None = None
    channel: Channel
    payment_method: PaymentMethod
    items: list[LineItem] = Field(min_length=1, max_length=MAX_BASKET_LINES)
    schema_version: Literal[1] = SCHEMA_VERSION

    @model_validator(mode="after")
    def _amount_within_limit(self) -> TransactionEvent:
        gross = sum((item.gross_amount for item in self.items), Decimal(0))
        if gross > MAX_BASKET_AMOUNT:
            raise PydanticCustomError(
                "amount_out_of_range",
                "the basket's gross amount {gross} exceeds MAX_BASKET_AMOUNT={limit}",
                {"gross": str(gross), "limit": str(MAX_BASKET_AMOUNT)},
            )
        return self

    @property
    def key(self) -> bytes:
        """Kafka key: a basket and all of its refunds land in the same partition."""
        return self.transaction_id.encode()


class RefundEvent(_Contract):
    """Money returned for (part of) one line of an earlier transaction; on the refunds topic."""

    event_id: UUID
    refund_id: Identifier
    transaction_id: Identifier
    product_id: Identifier
    quantity: Quantity
    amount: Money
    reason: RefundReason
    event_ts: UtcTimestamp
    schema_version: Literal[1] = SCHEMA_VERSION

    @property
    def key(self) -> bytes:
        return self.transaction_id.encode()


EVENT_MODELS: dict[str, type[_Contract]] = {
    "transaction_event": TransactionEvent,
    "refund_event": RefundEvent,
}


def json_schema(model: type[BaseModel]) -> dict:
    """The JSON Schema of what goes on the wire (serialization mode: money is a number)."""
    return model.model_json_schema(mode="serialization")


def schema_path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def render_schema(name: str) -> str:
    return json.dumps(json_schema(EVENT_MODELS[name]), indent=2, sort_keys=True) + "\n"


def write_schemas() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for name in EVENT_MODELS:
        path = schema_path(name)
        path.write_text(render_schema(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas():
        print(written_path)
