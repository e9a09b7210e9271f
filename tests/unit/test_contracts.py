"""Event contracts: what is accepted, what is refused, and that the checked-in JSON Schemas are current."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from pydantic import ValidationError

from retail.contracts import (
    EVENT_MODELS,
    LineItem,
    RefundEvent,
    TransactionEvent,
    render_schema,
    schema_path,
)


def basket(**changes: object) -> dict:
    event = {
        "event_id": str(uuid4()),
        "transaction_id": "T-000001",
        "event_ts": "2026-11-24T09:30:00.250Z",
        "store_id": "S001",
        "customer_id": "C00042",
        "channel": "store",
        "payment_method": "card",
        "items": [{"product_id": "P0001", "quantity": 2, "unit_price": 1.99, "discount": 0.5}],
    }
    event.update(changes)
    return event


def test_a_basket_round_trips_through_json_exactly() -> None:
    event = TransactionEvent.model_validate(basket())
    wire = json.loads(event.model_dump_json())
    assert wire["items"][0]["unit_price"] == 1.99  # a JSON number, not a string
    again = TransactionEvent.model_validate_json(event.model_dump_json())
    assert again == event
    assert again.items[0].paid_amount == Decimal("3.48")
    assert again.event_ts == datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=UTC)
    assert again.schema_version == 1


def test_offsets_are_normalised_to_utc() -> None:
    event = TransactionEvent.model_validate(basket(event_ts="2026-11-24T10:30:00+01:00"))
    assert event.event_ts == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert event.event_ts.tzinfo == UTC
    assert event.event_ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"items": [{"product_id": "P1", "quantity": 0, "unit_price": 1.0}]}, "greater than 0"),
        ({"items": [{"product_id": "P1", "quantity": -3, "unit_price": 1.0}]}, "greater than 0"),
        ({"items": [{"product_id": "P1", "quantity": 1, "unit_price": -1.0}]}, "greater than or equal to 0"),
        (
            {"items": [{"product_id": "P1", "quantity": 1, "unit_price": 1.0, "discount": 2.0}]},
            "discount exceeds",
        ),
        ({"items": [{"product_id": "P1", "quantity": 1, "unit_price": 1.001}]}, "decimal places"),
        ({"items": []}, "at least 1 item"),
        ({"event_ts": "2026-11-24T09:30:00"}, "UTC offset"),
        ({"channel": "carrier_pigeon"}, "Input should be"),
        ({"store_id": ""}, "at least 1 character"),
        ({"unexpected": 1}, "Extra inputs are not permitted"),
        ({"schema_version": 2}, "Input should be 1"),
    ],
)
def test_invalid_baskets_are_refused_with_a_reason(changes: dict, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        TransactionEvent.model_validate(basket(**changes))


def test_missing_required_field_is_refused() -> None:
    event = basket()
    del event["store_id"]
    with pytest.raises(ValidationError, match="store_id"):
        TransactionEvent.model_validate(event)


def test_guest_checkout_has_no_customer() -> None:
    assert TransactionEvent.model_validate(basket(customer_id=None)).customer_id is None


def test_refund_and_its_sale_share_a_kafka_key() -> None:
    sale = TransactionEvent.model_validate(basket())
    refund = RefundEvent(
        event_id=uuid4(),
        refund_id="R-1",
        transaction_id=sale.transaction_id,
        product_id="P0001",
        quantity=1,
        amount=Decimal("1.74"),
        reason="damaged",
        event_ts=datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert refund.key == sale.key == b"T-000001"
    with pytest.raises(ValidationError, match="Input should be"):
        RefundEvent.model_validate({**refund.model_dump(), "reason": "because"})


def test_line_item_amounts() -> None:
    line = LineItem(product_id="P1", quantity=3, unit_price=Decimal("2.50"), discount=Decimal("1.00"))
    assert (line.gross_amount, line.paid_amount) == (Decimal("7.50"), Decimal("6.50"))


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_checked_in_json_schema_is_current(name: str) -> None:
    assert schema_path(name).read_text(encoding="utf-8") == render_schema(name), (
        f"{schema_path(name).name} is stale: run `python -m retail.contracts`"
    )
