"""Test events built with the contracts (never hand-written JSON for valid events), and a sender."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kafka import KafkaProducer

from retail.contracts import LineItem, RefundEvent, TransactionEvent
from retail.settings import Settings

PRODUCTS = [f"P{n:04d}" for n in range(1, 41)]
STORES = [f"S{n:03d}" for n in range(1, 11)]


def transaction(
    rng: random.Random, event_ts: datetime, *, lines: int | None = None, store_id: str | None = None
) -> TransactionEvent:
    count = lines or rng.randint(1, 5)
    items = []
    for _ in range(count):
        quantity = rng.randint(1, 4)
        price = Decimal(rng.randint(50, 5000)) / 100
        discount = (quantity * price * Decimal(rng.choice([0, 0, 5, 10])) / 100).quantize(Decimal("0.01"))
        items.append(
            LineItem(product_id=rng.choice(PRODUCTS), quantity=quantity, unit_price=price, discount=discount)
        )
    return TransactionEvent(
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        transaction_id=f"T{rng.getrandbits(64):016x}",
        event_ts=event_ts,
        store_id=store_id or rng.choice(STORES),
        customer_id=rng.choice([None, f"C{rng.randint(1, 500):05d}"]),
        channel=rng.choice(["store", "online", "mobile_app"]),
        payment_method=rng.choice(["card", "cash", "mobile_wallet"]),
        items=items,
    )


def refund(rng: random.Random, basket: TransactionEvent, event_ts: datetime) -> RefundEvent:
    line = rng.choice(basket.items)
    return RefundEvent(
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        refund_id=f"R{rng.getrandbits(64):016x}",
        transaction_id=basket.transaction_id,
        product_id=line.product_id,
        quantity=1,
        amount=line.unit_price,
        reason="damaged",
        event_ts=event_ts,
    )


def backfill(
    seed: int, transactions: int, start: datetime, span: timedelta, refund_share: float = 0.1
) -> tuple[list[TransactionEvent], list[RefundEvent]]:
    """A known, reproducible set of baskets spread over `span` (event times in order) and their refunds."""
    rng = random.Random(seed)
    baskets = [transaction(rng, start + span * i / transactions) for i in range(transactions)]
    refunds = [
        refund(rng, b, b.event_ts + timedelta(seconds=20)) for b in baskets if rng.random() < refund_share
    ]
    return baskets, refunds


def now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
    )


def send(settings: Settings, topic: str, payloads: Iterable[tuple[bytes | None, bytes]]) -> int:
    sender = producer(settings)
    sent = 0
    try:
        for key, value in payloads:
            sender.send(topic, key=key, value=value)
            sent += 1
        sender.flush()
    finally:
        sender.close()
    return sent


def send_events(
    settings: Settings, transactions: Iterable[TransactionEvent] = (), refunds: Iterable[RefundEvent] = ()
) -> None:
    send(settings, settings.transactions_topic, ((t.key, t.model_dump_json().encode()) for t in transactions))
    send(settings, settings.refunds_topic, ((r.key, r.model_dump_json().encode()) for r in refunds))
