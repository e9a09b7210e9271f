"""CSV replay of a point-of-sale export: the shipped sample, skipped rows accounted for, pacing, mapping."""

from __future__ import annotations

import csv
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from producer.catalog import load_catalog
from producer.replay import UCI_MAPPING, ReplayError, parse_mapping, parse_speed, read_plan, replay
from retail.contracts import RefundEvent, TransactionEvent
from retail.settings import Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "producer" / "data" / "sample_sales.csv"
RETURNS_SAMPLE = SAMPLE.with_name("sample_returns.csv")
# The returns sample's refunds, worked out by hand from its rows: (refund id, sale refunded, product,
# units, amount). C536370.1 skips 536369 (4 units of P0001, fewer than the 5 returned) for 536365;
# C536378.1 then takes 3 of 536369's 4; C536379.1 cannot refund 536381, which is later.
RETURNS_REFUNDS = [
    ("C536370.1", "536365", "P0001", 5, "7.45"),
    ("C536370.2", "536365", "P0002", 1, "2.79"),
    ("C536371.1", "536365", "P0003", 1, "599.99"),
    ("C536372.1", "536366", "P0005", 4, "11.96"),
    ("C536378.1", "536369", "P0001", 3, "4.47"),
    ("C536379.1", "536367", "P0007", 2, "35.98"),
    ("C536383.1", "536380", "P0011", 3, "6.57"),
]
# Returns without a sale to refund: before the sale (C536377), more units than left after an earlier
# return (C536374: 6 of 10 left, 7 returned), a product the customer never bought (C536375), a guest.
RETURNS_WITHOUT_SALE = ["C536377", "C536374", "C536375", "C536376"]
UCI_TIMESTAMPS = "%m/%d/%Y %H:%M"
Consume = Callable[[Settings, str], list]


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_sample_is_in_the_uci_column_style() -> None:
    rows = sample_rows()
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    assert list(rows[0]) == header.split(",")
    assert 150 <= len(rows) <= 250


@pytest.mark.integration
def test_replaying_the_sample_sends_known_baskets_and_reports_the_rest(
    topics: Settings, consume: Consume, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.csv"
    summary = replay(topics, SAMPLE, timestamp_format=UCI_TIMESTAMPS, speed="max", rejects_path=rejects)

    assert dict(summary.skipped) == {
        "unknown product 85123A": 2,
        "unknown product POST": 1,
        "unknown product 22423": 1,
        # Customer 15311 bought neither product before returning it.
        "return_without_sale": 2,
    }
    assert summary.skipped_examples["return_without_sale"] == ["C581412"]
    assert summary.refunds == 0
    assert "6 lines skipped: unknown product 85123A (2 lines" in "\n".join(summary.lines())
    with rejects.open(newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert len(rejected) == 6 and all(row["reject_reason"] for row in rejected)

    rows = sample_rows()
    known = [row for row in rows if row["StockCode"].startswith("P0") and int(row["Quantity"]) > 0]
    invoices = {row["InvoiceNo"] for row in known}
    messages = consume(topics, topics.transactions_topic)
    assert summary.transactions == len(invoices) == len(messages)
    events = [TransactionEvent.model_validate_json(m.value) for m in messages]
    assert {e.transaction_id for e in events} == invoices
    assert sum(len(e.items) for e in events) == len(known)
    by_id = {e.transaction_id: e for e in events}
    first = known[0]
    event = by_id[first["InvoiceNo"]]
    assert event.store_id == "S001"
    assert event.customer_id == first["CustomerID"]
    assert event.event_ts.isoformat() == "2025-11-03T08:28:00+00:00"
    guests = {row["InvoiceNo"] for row in known if not row["CustomerID"]}
    assert guests and all(by_id[invoice].customer_id is None for invoice in guests)


@pytest.mark.integration
def test_replaying_returns_sends_refunds_keyed_like_their_sales(
    topics: Settings, consume: Consume, tmp_path: Path
) -> None:
    summary = replay(topics, RETURNS_SAMPLE, timestamp_format=UCI_TIMESTAMPS, rejects_path=tmp_path / "r.csv")
    assert (summary.transactions, summary.refunds) == (9, len(RETURNS_REFUNDS))
    assert summary.skipped["return_without_sale"] == len(RETURNS_WITHOUT_SALE)
    assert "5 lines skipped" in "\n".join(summary.lines())  # the unknown product POST too
    assert "return_without_sale (4 lines e.g. C536377, C536374, C536375)" in "\n".join(summary.lines())
    refunds = [RefundEvent.model_validate_json(m.value) for m in consume(topics, topics.refunds_topic)]
    assert sorted(r.refund_id for r in refunds) == [r[0] for r in RETURNS_REFUNDS]
    assert sum(r.amount for r in refunds) == sum(Decimal(r[4]) for r in RETURNS_REFUNDS)
    messages = consume(topics, topics.refunds_topic)
    assert all(m.key == RefundEvent.model_validate_json(m.value).transaction_id.encode() for m in messages)


@pytest.mark.integration
def test_replay_keeps_the_original_pace_scaled_by_speed(topics: Settings) -> None:
    waits: list[float] = []
    summary = replay(topics, SAMPLE, timestamp_format=UCI_TIMESTAMPS, speed="3600x", sleep=waits.append)
    # The fake sleep does not pass time, so each wait is the basket's offset from the first, ÷ 3600.
    first_day_span_s = (18 * 60 + 53 - (8 * 60 + 28)) * 60  # 8:28 to 18:53 on the first day
    assert summary.transactions > 0
    assert waits == sorted(waits)
    assert max(waits) >= first_day_span_s / 3600 * 0.9


def returns_plan(**overrides: object):
    catalog = load_catalog(load_settings(_env_file=None))
    arguments = {
        "product_ids": catalog.product_ids,
        "store_ids": catalog.store_ids,
        "default_store": "S001",
        "timestamp_format": UCI_TIMESTAMPS,
        "cancellation_prefix": "C",
        **overrides,
    }
    return read_plan(RETURNS_SAMPLE, dict(UCI_MAPPING), **arguments)


def test_returns_refund_the_latest_earlier_sale_with_units_left() -> None:
    plan = returns_plan()
    refunds = [(r.refund_id, r.transaction_id, r.product_id, r.quantity, str(r.amount)) for r in plan.refunds]
    assert refunds == RETURNS_REFUNDS
    assert {r.reason for r in plan.refunds} == {"return"}
    assert plan.refunds[0].event_ts.isoformat() == "2025-12-02T14:05:00+00:00"
    rejected = [(row["InvoiceNo"], reason) for row, reason in plan.rejected]
    assert rejected == [("536367", "unknown product POST")] + [
        (invoice, "return_without_sale") for invoice in RETURNS_WITHOUT_SALE
    ]
    # A refund is sent after the sale it refunds.
    order = plan.in_send_order()
    sent = [item.refund_id if isinstance(item, RefundEvent) else item.transaction_id for item in order]
    assert all(sent.index(sale) < sent.index(refund) for refund, sale, *_ in RETURNS_REFUNDS)


def test_cancellation_invoices_are_returns_only_in_the_uci_layout(tmp_path: Path) -> None:
    """A `C` invoice is a return in the UCI layout whatever its sign; elsewhere only a negative
    quantity marks a return, and a zero quantity is rejected."""
    log = tmp_path / "log.csv"
    log.write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "1,P0001,3,12/1/2025 8:00,1.49,7\n"
        "C2,P0001,2,12/1/2025 9:00,1.49,7\n"
        "3,P0001,0,12/1/2025 9:30,1.49,7\n"
    )
    catalog = load_catalog(load_settings(_env_file=None))
    common = {
        "product_ids": catalog.product_ids,
        "store_ids": catalog.store_ids,
        "default_store": "S001",
        "timestamp_format": UCI_TIMESTAMPS,
    }
    uci = read_plan(log, dict(UCI_MAPPING), cancellation_prefix="C", **common)
    assert [(r.transaction_id, r.quantity, str(r.amount)) for r in uci.refunds] == [("1", 2, "2.98")]
    assert [reason for _, reason in uci.rejected] == ["zero quantity"]
    other = read_plan(log, dict(UCI_MAPPING), **common)
    assert not other.refunds
    assert sorted(b.transaction_id for b in other.baskets) == ["1", "C2"]


def test_mapping_and_speed_are_checked() -> None:
    assert parse_mapping(None)["InvoiceNo"] == "transaction_id"
    mapping = parse_mapping(
        ["id=transaction_id", "ts=event_ts", "sku=product_id", "qty=quantity", "price=unit_price"]
    )
    assert mapping["sku"] == "product_id"
    with pytest.raises(ReplayError, match="unknown field 'sku'"):
        parse_mapping(["StockCode=sku"])
    with pytest.raises(ReplayError, match="no column mapped to event_ts"):
        parse_mapping(["id=transaction_id", "sku=product_id", "qty=quantity", "price=unit_price"])
    assert parse_speed("max") is None
    assert parse_speed("original") == 1.0
    assert parse_speed("10x") == 10.0
    with pytest.raises(ReplayError):
        parse_speed("fast")
