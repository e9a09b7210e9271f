"""Against the real embedded broker: what the producer reports sending is exactly what a consumer reads."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError

from producer.backfill import backfill
from producer.config import Faults, MalformedKind, load_simulation_config
from producer.kafka_sink import (
    IdempotenceDisabledError,
    create_producer,
    has_producer_id,
    verify_idempotence,
)
from producer.live import live
from retail.contracts import MAX_EVENT_BYTES, RefundEvent, TransactionEvent
from retail.settings import Settings

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 2, tzinfo=UTC)
# consume(settings, topic) -> messages with .partition, .key, .value (see conftest.py)
Consume = Callable[..., list]


def small_config(customers: int = 2000):
    return load_simulation_config().model_copy(update={"customers": customers})


def test_backfill_counts_match_what_a_consumer_reads(topics: Settings, consume: Consume) -> None:
    summary = backfill(topics, 3, seed=11, end=END, workers=2, config=small_config())
    transactions = consume(topics, topics.transactions_topic)
    refunds = consume(topics, topics.refunds_topic)
    assert summary.failed == 0
    assert summary.per_topic == {
        topics.transactions_topic: len(transactions),
        topics.refunds_topic: len(refunds),
    }
    assert summary.transactions == len(transactions) > 500
    assert summary.refunds == len(refunds) > 0
    assert summary.workers == 2

    sales = {}
    partitions = {}
    for message in transactions:
        event = TransactionEvent.model_validate_json(message.value)
        assert message.key == event.key
        sales[event.transaction_id] = event
        partitions[event.transaction_id] = message.partition
    for message in refunds:
        refund = RefundEvent.model_validate_json(message.value)
        sale = sales[refund.transaction_id]
        assert message.key == sale.key
        assert sale.event_ts < refund.event_ts
        line = next(line for line in sale.items if line.product_id == refund.product_id)
        assert refund.amount <= line.paid_amount
    # A refund lands in the same partition number as its sale: same key, and the refunds topic's
    # partitioner sees the same hash (with 6 vs 3 partitions: sale partition mod 3).
    for message in refunds:
        transaction_id = json.loads(message.value)["transaction_id"]
        assert message.partition == partitions[transaction_id] % topics.refunds_partitions


def test_same_seed_gives_the_same_stream_with_any_worker_count(platform: Settings, consume: Consume) -> None:
    streams = []
    for index, workers in enumerate((1, 2)):
        settings = platform.model_copy(
            update={
                "transactions_topic": f"determinism_tx_{index}",
                "refunds_topic": f"determinism_rf_{index}",
            }
        )
        summary = backfill(settings, 2, seed=5, end=END, workers=workers, config=small_config(1500))
        sales = consume(settings, settings.transactions_topic, expected=summary.transactions)
        refunds = consume(settings, settings.refunds_topic, expected=summary.refunds)
        streams.append(sorted(m.value for m in sales) + sorted(m.value for m in refunds))
    assert streams[0] == streams[1]
    assert len(streams[0]) > 100


def test_each_malformed_kind_is_produced_exactly_as_requested(topics: Settings, consume: Consume) -> None:
    requested = {kind: n for n, kind in enumerate(MalformedKind, start=1)}
    faults = Faults(
        malformed=requested, duplicate_fraction=0.05, late_fraction=0.05, max_lateness_seconds=900
    )
    summary = backfill(topics, 1, seed=3, end=END, workers=2, config=small_config(1000), faults=faults)
    assert summary.malformed == {kind.value: n for kind, n in requested.items()}

    transactions = consume(topics, topics.transactions_topic)
    refunds = consume(topics, topics.refunds_topic)
    assert len(transactions) + len(refunds) == summary.events
    seen: Counter[str] = Counter()
    event_ids: Counter[str] = Counter()
    for message in transactions:
        try:
            event = TransactionEvent.model_validate_json(message.value)
        except ValueError:
            seen[classify_broken(message.value)] += 1
            continue
        event_ids[str(event.event_id)] += 1
        if event.store_id.startswith("S9"):
            seen["unknown_store"] += 1
        elif any(line.product_id.startswith("P9") for line in event.items):
            seen["unknown_product"] += 1
    for message in refunds:
        refund = RefundEvent.model_validate_json(message.value)
        if refund.transaction_id.startswith("TX-UNKNOWN-"):
            seen["unknown_transaction_refund"] += 1
    assert seen == {kind.value: n for kind, n in requested.items()}
    duplicated = sum(count - 1 for count in event_ids.values())
    assert duplicated > 0
    assert summary.duplicates >= duplicated  # the rest are duplicated refunds
    assert summary.late > 0


def classify_broken(payload: bytes) -> str:
    if len(payload) > MAX_EVENT_BYTES:
        return "oversized_payload"
    try:
        document = json.loads(payload)
    except ValueError:
        return "invalid_json"
    if "store_id" not in document:
        return "missing_field"
    quantity = document["items"][0]["quantity"]
    return "wrong_type" if isinstance(quantity, str) else "negative_quantity"


def test_producer_is_idempotent_and_verified(topics: Settings) -> None:
    producer = create_producer(topics, client_id="test-idempotence")
    try:
        assert producer.config["enable_idempotence"] is True
        assert producer.config["acks"] in (-1, "all")
        assert producer.config["max_in_flight_requests_per_connection"] <= 5
        producer.send(topics.transactions_topic, b"{}", key=b"k").get(timeout=30)
        assert has_producer_id(producer)  # the broker handed out a producer id: sequence numbers are on
    finally:
        producer.close()


def test_silently_disabled_idempotence_is_caught(topics: Settings) -> None:
    # Leaving enable_idempotence at its default with acks=1 makes kafka-python turn it off with only a
    # log warning; verify_idempotence must refuse such a producer.
    producer = KafkaProducer(bootstrap_servers=topics.bootstrap_servers, acks=1)
    try:
        assert producer.config["enable_idempotence"] is False
        with pytest.raises(IdempotenceDisabledError, match="not idempotent"):
            verify_idempotence(producer)
    finally:
        producer.close()
    with pytest.raises(KafkaConfigurationError):
        KafkaProducer(bootstrap_servers=topics.bootstrap_servers, enable_idempotence=True, acks=1)


def test_live_mode_stops_flushes_and_reports(topics: Settings, consume: Consume) -> None:
    stop = threading.Event()
    result = {}
    faults = Faults(malformed={MalformedKind.INVALID_JSON: 2})
    runner = threading.Thread(
        target=lambda: result.update(
            summary=live(topics, rate=40, seed=9, stop=stop, config=small_config(500), faults=faults)
        )
    )
    runner.start()
    threading.Timer(2.0, stop.set).start()
    runner.join(timeout=60)
    assert not runner.is_alive()
    summary = result["summary"]
    messages = consume(topics, topics.transactions_topic)
    assert summary.failed == 0
    assert 30 <= summary.transactions <= 160
    assert summary.malformed == {"invalid_json": 2}
    assert len(messages) == summary.per_topic[topics.transactions_topic] == summary.transactions + 2
    now = datetime.now(UTC)
    for message in messages:
        try:
            event = TransactionEvent.model_validate_json(message.value)
        except ValueError:
            continue
        assert abs((now - event.event_ts).total_seconds()) < 60
