"""CSV replay of a point-of-sale export: the shipped sample, skipped rows accounted for, pacing, mapping."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from producer.replay import ReplayError, parse_mapping, parse_speed, replay
from retail.contracts import TransactionEvent
from retail.settings import Settings

SAMPLE = Path(__file__).resolve().parents[2] / "producer" / "data" / "sample_sales.csv"
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
        "return or cancellation (quantity ≤ 0)": 2,
    }
    assert summary.skipped_examples["return or cancellation (quantity ≤ 0)"] == ["C581412"]
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
def test_replay_keeps_the_original_pace_scaled_by_speed(topics: Settings) -> None:
    waits: list[float] = []
    summary = replay(topics, SAMPLE, timestamp_format=UCI_TIMESTAMPS, speed="3600x", sleep=waits.append)
    # The fake sleep does not pass time, so each wait is the basket's offset from the first, ÷ 3600.
    first_day_span_s = (18 * 60 + 53 - (8 * 60 + 28)) * 60  # 8:28 to 18:53 on the first day
    assert summary.transactions > 0
    assert waits == sorted(waits)
    assert max(waits) >= first_day_span_s / 3600 * 0.9


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
