"""Hostile input: 30+ distinct hostile messages mixed into 10,000 good baskets and their refunds. Every
hostile message lands in ops.dead_letter with its expected reason, every good event lands, no query
stops, and neither kind of duplicate id adds a line to the basket that owns the id."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from kafka import KafkaProducer
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from retail.contracts import MAX_BASKET_LINES, MAX_EVENT_BYTES
from retail.settings import Settings
from spark.streaming_job import start_queries
from tests.spark.conftest import load_dimensions, module_settings, scalar, truncate_speed_tables
from tests.spark.events import backfill, now_minute, producer, refund, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

GOOD_BASKETS = 10_000


@pytest.fixture(scope="module")
def running(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, list[StreamingQuery]]]:
    settings = module_settings(platform, tmp_path_factory.mktemp("hostile"), "hostile")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    queries = start_queries(spark, settings)
    try:
        yield settings, queries
    finally:
        for query in queries:
            query.stop()


def _edit(event: dict, **changes: object) -> bytes:
    return json.dumps({**json.loads(json.dumps(event)), **changes}).encode()


def _edit_line(event: dict, **changes: object) -> bytes:
    copy = json.loads(json.dumps(event))
    copy["items"][0].update(changes)
    return json.dumps(copy).encode()


def _fresh(event: dict) -> dict:
    """The same event under new ids, so only the intended fault makes it invalid."""
    return {**event, "event_id": str(uuid.uuid4()), "transaction_id": f"T-{uuid.uuid4().hex[:12]}"}


def hostile_transactions(base: dict, first: dict) -> list[tuple[str, bytes | None, bytes]]:
    """(expected reason, key, value) on the transactions topic. `first` has landed already."""
    b = _fresh(base)
    overflow_line = {
        "product_id": b["items"][0]["product_id"],
        "quantity": 10_000,
        "unit_price": 9999999999.99,
    }
    extra_lines = [*first["items"], {**first["items"][0], "quantity": 1}]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cases: list[tuple[str, bytes]] = [
        ("invalid_json", b'{"event_id": "broken'),
        ("invalid_json", b""),
        ("invalid_json", b"\xff\xfe\x00garbage"),
        ("invalid_json", b"[" * 3000),
        ("not_an_object", b"null"),
        ("not_an_object", b"[]"),
        ("not_an_object", b"42"),
        ("oversized", json.dumps({"padding": "x" * (MAX_EVENT_BYTES + 1)}).encode()),
        ("invalid_timestamp", _edit(_fresh(base), event_ts="0001-01-01T00:00:00+05:00")),
        ("invalid_timestamp", _edit(_fresh(base), event_ts="9999-12-31T23:30:00-05:00")),
        ("invalid_timestamp", _edit(_fresh(base), event_ts=1764979200)),
        ("invalid_timestamp", _edit(_fresh(base), event_ts=1764979200123.5)),
        ("invalid_timestamp", _edit(_fresh(base), event_ts="2026-12-06T08:00:00")),
        ("invalid_timestamp", _edit(_fresh(base), event_ts="2999-01-01T00:00:00Z")),
        ("future_event", _edit(_fresh(base), event_ts=future)),
        ("future_event", _edit(_fresh(base), event_ts="2150-06-01T00:00:00Z")),
        ("out_of_range", _edit(_fresh(base), items=[overflow_line] * MAX_BASKET_LINES)),
        ("out_of_range", _edit(_fresh(base), items=[base["items"][0]] * (MAX_BASKET_LINES + 1))),
        ("out_of_range", _edit_line(_fresh(base), quantity=10_001)),
        ("wrong_type", _edit_line(_fresh(base), quantity="2")),
        ("wrong_type", _edit_line(_fresh(base), unit_price="1.50")),
        ("wrong_type", _edit_line(_fresh(base), quantity=1.5)),
        ("wrong_type", _edit(_fresh(base), event_id="not-a-uuid")),
        ("non_finite_number", _edit_line(_fresh(base), unit_price=1.0).replace(b"1.0", b"NaN")),
        ("non_finite_number", _edit_line(_fresh(base), unit_price=1.0).replace(b"1.0", b"Infinity")),
        ("non_positive_quantity", _edit_line(_fresh(base), quantity=-3)),
        ("negative_price", _edit_line(_fresh(base), unit_price=-0.01)),
        ("invalid_value", _edit_line(_fresh(base), discount=10**6)),
        ("missing_field", json.dumps({k: v for k, v in _fresh(base).items() if k != "store_id"}).encode()),
        ("unexpected_field", _edit(_fresh(base), coupon="FREE")),
        ("unknown_product", _edit_line(_fresh(base), product_id="P9999")),
        ("unknown_store", _edit(_fresh(base), store_id="S999")),
        # A new event reusing a landed transaction id with an extra line, and a landed event id under
        # a new transaction id: neither may add a line anywhere.
        ("duplicate_transaction_id", _edit(first, event_id=str(uuid.uuid4()), items=extra_lines)),
        ("duplicate_event_id", _edit(first, transaction_id="T-dup-event-id")),
    ]
    keyed = {"duplicate_transaction_id": first["transaction_id"].encode()}
    return [(reason, keyed.get(reason), value) for reason, value in cases]


def hostile_refunds(base: dict, first: dict) -> list[tuple[str, bytes | None, bytes]]:
    cases = [
        ("wrong_type", _edit(base, event_id=str(uuid.uuid4()), refund_id="R-x1", amount="3.00")),
        ("missing_field", b"{}"),
        ("duplicate_refund_id", _edit(first, event_id=str(uuid.uuid4()))),
    ]
    return [(reason, None, value) for reason, value in cases]


def _send_recorded(
    sender: KafkaProducer,
    topic: str,
    good: list[tuple[bytes, bytes]],
    bad: list[tuple[str, bytes | None, bytes]],
) -> list:
    """Send `bad` spread evenly among `good`; returns (reason, future) of each bad message."""
    step = max(len(good) // (len(bad) + 1), 1)
    futures = []
    bad_left = list(bad)
    for index, (key, value) in enumerate(good):
        if index % step == 0 and bad_left:
            reason, bad_key, bad_value = bad_left.pop(0)
            futures.append((reason, sender.send(topic, key=bad_key, value=bad_value)))
        sender.send(topic, key=key, value=value)
    for reason, bad_key, bad_value in bad_left:
        futures.append((reason, sender.send(topic, key=bad_key, value=bad_value)))
    return futures


def test_hostile_messages_are_dead_lettered_and_good_ones_land(
    running: tuple[Settings, list[StreamingQuery]],
) -> None:
    settings, queries = running
    rng = random.Random(12)
    first = transaction(rng, now_minute(), lines=2)
    first_refund = refund(rng, first, now_minute())
    send_events(settings, [first], [first_refund])
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == 1, what="the first basket")

    baskets, refunds = backfill(12, GOOD_BASKETS, now_minute() - timedelta(minutes=2), timedelta(minutes=2))
    base = json.loads(baskets[0].model_dump_json())
    first_json = json.loads(first.model_dump_json())
    bad_tx = hostile_transactions(base, first_json)
    bad_rf = hostile_refunds(
        json.loads(refunds[0].model_dump_json()), json.loads(first_refund.model_dump_json())
    )
    assert len({value for _, _, value in bad_tx + bad_rf}) == len(bad_tx) + len(bad_rf) >= 25

    sender = producer(settings)
    try:
        sent = _send_recorded(
            sender,
            settings.transactions_topic,
            [(b.key, b.model_dump_json().encode()) for b in baskets],
            bad_tx,
        )
        sent += _send_recorded(
            sender, settings.refunds_topic, [(r.key, r.model_dump_json().encode()) for r in refunds], bad_rf
        )
        sender.flush()
        expected = {}
        for reason, future in sent:
            meta = future.get(timeout=30)
            expected[(meta.topic, meta.partition, meta.offset)] = reason
    finally:
        sender.close()

    wait_for(
        lambda: scalar(settings, "select count(*) from raw.transactions") == GOOD_BASKETS + 1,
        timeout_s=400,
        what="every good basket",
    )
    wait_for(lambda: scalar(settings, "select count(*) from raw.refunds") == len(refunds) + 1, what="refunds")
    wait_for(
        lambda: scalar(settings, "select count(*) from ops.dead_letter") == len(expected), what="dead letters"
    )

    with psycopg.connect(settings.writer_dsn) as conn:
        landed = {
            (topic, partition, offset): reason
            for topic, partition, offset, reason in conn.execute(
                "select topic, kafka_partition, kafka_offset, reason from ops.dead_letter"
            )
        }
        lines_of_first = conn.execute(
            "select count(*), sum(quantity) from raw.transaction_items where transaction_id = %s",
            (first.transaction_id,),
        ).fetchone()
        orphans = conn.execute(
            "select count(*) from raw.transaction_items i where not exists "
            "(select 1 from raw.transactions t where t.transaction_id = i.transaction_id)"
        ).fetchone()[0]
        wrong_line_counts = conn.execute(
            "select count(*) from raw.transactions t where line_count <> "
            "(select count(*) from raw.transaction_items i where i.transaction_id = t.transaction_id)"
        ).fetchone()[0]
        watermark = conn.execute(
            "select max_event_ts from ops.stream_watermarks where watermark_name = %s",
            (settings.transactions_topic,),
        ).fetchone()[0]
    assert landed == expected
    assert lines_of_first == (len(first.items), sum(i.quantity for i in first.items))
    assert orphans == 0 and wrong_line_counts == 0
    assert scalar(settings, "select count(*) from raw.transaction_items") == len(first.items) + sum(
        len(b.items) for b in baskets
    )
    # Future-dated events were refused, so they could not move the watermark.
    assert watermark <= datetime.now(UTC) + timedelta(minutes=5)
    assert all(query.isActive and query.exception() is None for query in queries)
