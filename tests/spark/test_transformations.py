"""Unit tests of the validation, parsing and row-building steps on static DataFrames (no Kafka, no
Postgres)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession

from retail.contracts import MAX_EVENT_BYTES, LineItem
from spark import arrow_rows
from spark.kafka_source import KAFKA_COLUMNS_DDL, admit, data_loss_message
from spark.lake import LakeSpool, event_schema
from spark.transformations import parsed_or_rejected, validate_messages
from spark.validation import StaticDimensions, check_message
from tests.spark.events import refund, transaction

DIMENSIONS = StaticDimensions(products=frozenset({"P0001", "P0002", "P0003"}), stores=frozenset({"S001"}))
T0 = datetime(2026, 11, 24, 9, 30, 10, tzinfo=UTC)


def _basket(items: list[tuple[str, int, str, str]], ts: datetime = T0, seed: int = 1):
    event = transaction(random.Random(seed), ts, lines=1, store_id="S001")
    return event.model_copy(
        update={
            "items": [
                LineItem(product_id=p, quantity=q, unit_price=Decimal(u), discount=Decimal(d))
                for p, q, u, d in items
            ]
        }
    )


def _kafka_rows(spark: SparkSession, payloads: list[bytes]):
    rows = [(None, p, "t", 0, i, T0, 0) for i, p in enumerate(payloads)]
    return spark.createDataFrame(rows, KAFKA_COLUMNS_DDL)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: "not json", "invalid_json"),
        (lambda e: {k: v for k, v in e.items() if k != "store_id"}, "missing_field"),
        (lambda e: {**e, "items": [{**e["items"][0], "quantity": "two"}]}, "wrong_type"),
        (lambda e: {**e, "items": [{**e["items"][0], "quantity": -1}]}, "non_positive_quantity"),
        (lambda e: {**e, "items": [{**e["items"][0], "unit_price": -0.5}]}, "negative_price"),
        (lambda e: {**e, "store_id": "S999"}, "unknown_store"),
        (lambda e: {**e, "items": [{**e["items"][0], "product_id": "P0404"}]}, "unknown_product"),
        (lambda e: {**e, "surprise": 1}, "unexpected_field"),
        (lambda e: {**e, "note": "x" * MAX_EVENT_BYTES}, "oversized"),
    ],
)
def test_check_message_reasons(change, reason: str) -> None:
    event = json.loads(_basket([("P0001", 1, "2.50", "0")]).model_dump_json())
    changed = change(event)
    payload = changed.encode() if isinstance(changed, str) else json.dumps(changed).encode()
    normalized, got, error = check_message(payload, "transaction", DIMENSIONS.products, DIMENSIONS.stores)
    assert (normalized, got) == (None, reason)
    assert error


def test_validate_parse_and_explode_transactions(spark: SparkSession) -> None:
    good = _basket([("P0001", 2, "1.50", "0.30"), ("P0002", 1, "4.00", "0"), ("P0001", 1, "1.50", "0")])
    validated = validate_messages(
        _kafka_rows(spark, [good.model_dump_json().encode(), b"{oops"]), "transaction", DIMENSIONS
    )
    split = arrow_rows.split_batch(parsed_or_rejected(validated, "transaction").toArrow())
    assert [r["reason"] for r in split.dead_letters.to_pylist()] == ["invalid_json"]
    assert split.events.schema.names == event_schema("transactions").names
    [row] = arrow_rows.basket_rows(split.events).to_pylist()
    assert (row["transaction_id"], row["line_count"], row["event_ts"], row["kafka_offset"]) == (
        good.transaction_id,
        3,
        T0,
        0,
    )
    lines = arrow_rows.item_rows(split.events).select(
        ["line_number", "product_id", "quantity", "unit_price", "discount"]
    )
    assert [tuple(r.values()) for r in lines.to_pylist()] == [
        (1, "P0001", 2, Decimal("1.50"), Decimal("0.30")),
        (2, "P0002", 1, Decimal("4.00"), Decimal("0.00")),
        (3, "P0001", 1, Decimal("1.50"), Decimal("0.00")),
    ]


def test_arrow_rows_follow_the_events(spark: SparkSession) -> None:
    """Every basket's lines (with its Kafka record, for the sink's join), refunds, and dead letters."""
    rng = random.Random(5)
    baskets = [transaction(rng, T0, store_id="S001") for _ in range(6)]
    baskets = [
        b.model_copy(update={"items": [i.model_copy(update={"product_id": "P0002"}) for i in b.items]})
        for b in baskets
    ]
    payloads = [b.model_dump_json().encode() for b in baskets]
    tx = _kafka_rows(spark, [payloads[0], b"{oops", *payloads[1:], b'{"event_id": 1}'])
    validated = validate_messages(tx, "transaction", DIMENSIONS)
    split = arrow_rows.split_batch(parsed_or_rejected(validated, "transaction").toArrow())
    assert [r["transaction_id"] for r in arrow_rows.basket_rows(split.events).to_pylist()] == [
        b.transaction_id for b in baskets
    ]
    items = arrow_rows.item_rows(split.events, with_source=True).to_pylist()
    assert [(r["transaction_id"], r["line_number"], r["quantity"]) for r in items] == [
        (b.transaction_id, n, line.quantity) for b in baskets for n, line in enumerate(b.items, 1)
    ]
    assert {r["kafka_offset"] for r in items} == {0, 2, 3, 4, 5, 6}
    assert [r["reason"] for r in split.dead_letters.to_pylist()] == ["invalid_json", "wrong_type"]
    assert [r["kafka_offset"] for r in split.dead_letters.to_pylist()] == [1, 7]

    returned = [refund(rng, b, T0) for b in baskets[:3]]
    rf = _kafka_rows(spark, [r.model_dump_json().encode() for r in returned])
    validated = validate_messages(rf, "refund", DIMENSIONS)
    split = arrow_rows.split_batch(parsed_or_rejected(validated, "refund").toArrow())
    rows = arrow_rows.refund_rows(split.events).to_pylist()
    assert [(r["refund_id"], r["amount"], r["kafka_offset"]) for r in rows] == [
        (r.refund_id, r.amount, n) for n, r in enumerate(returned)
    ]
    assert split.dead_letters.num_rows == 0


def test_lake_spool_file_is_the_same_for_a_replayed_batch(spark: SparkSession, tmp_path) -> None:
    rng = random.Random(6)
    tx = _kafka_rows(spark, [transaction(rng, T0, store_id="S001").model_dump_json().encode()] * 3)
    validated = validate_messages(tx, "transaction", DIMENSIONS.__class__(frozenset(), frozenset()))
    nothing_valid = arrow_rows.split_batch(parsed_or_rejected(validated, "transaction").toArrow())
    assert nothing_valid.events.num_rows == 0
    products = frozenset(f"P{n:04d}" for n in range(1, 41))
    validated = validate_messages(tx, "transaction", DIMENSIONS.__class__(products, frozenset({"S001"})))
    events = arrow_rows.split_batch(parsed_or_rejected(validated, "transaction").toArrow()).events
    spool = LakeSpool(str(tmp_path / "spool"))
    first = spool.write("query-id", 7, events)
    assert spool.write("query-id", 7, events) == first  # a replay rewrites the same file
    assert spool.write("query-id", 7, events.slice(1)) != first  # different content, another name
    assert spool.write("query-id", 8, events) != first
    assert sorted(p.name.startswith("batch-") for p in (tmp_path / "spool").iterdir()) == [True] * 3
    read = spark.read.schema(event_schema("transactions")).parquet(first)
    assert read.toArrow().to_pylist() == events.to_pylist()


def test_admit_shares_the_limit_across_partitions() -> None:
    assert admit({0: 0, 1: 10, 2: 5}, {0: 100, 1: 12, 2: 50}, 30) == {0: 14, 1: 12, 2: 19}
    assert admit({0: 0, 1: 0}, {0: 3, 1: 0}, 10) == {0: 3, 1: 0}


def test_data_loss_message_names_everything() -> None:
    message = data_loss_message("transactions", 2, checkpointed=150, earliest=0, latest=0)
    for part in (
        "'transactions'",
        "partition 2",
        "150",
        "latest offset 0",
        "retail stream --reset-checkpoints",
    ):
        assert part in message
