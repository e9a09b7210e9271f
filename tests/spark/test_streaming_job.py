"""Integration: real broker, real Spark, real Postgres. A backfill of known size lands with exact counts
and sums in raw, speed and lake; minute metrics equal a recomputation from the raw tables; every kind of
malformed message lands in ops.dead_letter with its reason while good events around it still land."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from pyspark.sql import SparkSession

from retail.contracts import MAX_EVENT_BYTES
from retail.settings import Settings
from spark.lake import dataset_path
from spark.progress_listener import ProgressRecorder
from spark.streaming_job import QUERY_NAMES, start_queries
from tests.spark.conftest import (
    METRICS_MISMATCHES,
    lake_count,
    load_dimensions,
    module_settings,
    scalar,
    truncate_speed_tables,
)
from tests.spark.events import backfill, now_minute, send, send_events, transaction
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(
    platform: Settings, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    settings = module_settings(platform, tmp_path_factory.mktemp("stream"), "it")
    truncate_speed_tables(settings)
    load_dimensions(settings)
    recorder = ProgressRecorder(settings.writer_dsn)
    spark.streams.addListener(recorder)
    queries = start_queries(spark, settings)
    try:
        yield settings
    finally:
        for query in queries:
            query.stop()
        spark.streams.removeListener(recorder)
    for query in queries:
        assert query.exception() is None, query.exception()


def test_backfill_lands_exactly_in_raw_speed_and_lake(stream: Settings, spark: SparkSession) -> None:
    baskets, refunds = backfill(
        seed=4, transactions=1500, start=now_minute() - timedelta(minutes=3), span=timedelta(minutes=3)
    )
    lines = sum(len(b.items) for b in baskets)
    units = sum(i.quantity for b in baskets for i in b.items)
    gross = sum(i.gross_amount for b in baskets for i in b.items)
    refund_total = sum(r.amount for r in refunds)
    # The producer may send an event twice on purpose: it must land once.
    send_events(stream, baskets + baskets[:50], refunds + refunds[:5])

    wait_for(lambda: scalar(stream, "select count(*) from raw.transaction_items") == lines, what="raw items")
    wait_for(lambda: scalar(stream, "select count(*) from raw.refunds") == len(refunds), what="raw refunds")
    assert scalar(stream, "select count(*) from raw.transactions") == len(baskets)
    assert scalar(stream, "select sum(quantity) from raw.transaction_items") == units
    assert scalar(stream, "select sum(quantity * unit_price) from raw.transaction_items") == gross
    assert scalar(stream, "select sum(amount) from raw.refunds") == refund_total

    wait_for(
        lambda: (
            scalar(stream, "select sum(units) from speed.product_metrics_minute") == units
            and scalar(stream, "select sum(refunds) from speed.product_metrics_minute") == len(refunds)
        ),
        what="minute metrics",
    )
    wait_for(lambda: scalar(stream, METRICS_MISMATCHES) == 0, timeout_s=20, what="metrics = recomputation")
    assert scalar(stream, "select sum(gross_revenue) from speed.product_metrics_minute") == gross
    assert scalar(stream, "select sum(refund_amount) from speed.product_metrics_minute") == refund_total

    def lake_events(dataset: str) -> int:
        return lake_count(spark, Path(dataset_path(stream, dataset)))

    wait_for(lambda: lake_events("transactions") == len(baskets) + 50, what="lake transactions")
    wait_for(lambda: lake_events("refunds") == len(refunds) + 5, what="lake refunds")
    lake = spark.read.parquet(dataset_path(stream, "transactions"))
    assert lake.select("event_id").distinct().count() == len(baskets)
    assert {r.event_date for r in lake.select("event_date").distinct().collect()} == {
        b.event_ts.date() for b in baskets
    }
    assert scalar(stream, "select count(*) from ops.dead_letter") == 0
    assert scalar(stream, "select count(*) from ops.late_events") == 0


def test_progress_is_recorded_per_query(stream: Settings) -> None:
    wait_for(
        lambda: (
            scalar(stream, "select count(distinct query_name) from ops.stream_progress") == len(QUERY_NAMES)
        ),
        what="progress rows of every query",
    )
    assert (
        scalar(stream, "select sum(rows_written) from ops.stream_progress where query_name = 'raw_refunds'")
        > 0
    )


def _mutated(base: dict, change: Callable[[dict], object]) -> bytes:
    event = json.loads(json.dumps(base))
    change(event)
    return json.dumps(event).encode()


def test_malformed_messages_are_dead_lettered_with_reasons(stream: Settings) -> None:
    rng = random.Random(7)
    before_items = scalar(stream, "select count(*) from raw.transaction_items")
    good = [transaction(rng, now_minute()) for _ in range(20)]
    base = json.loads(good[0].model_copy(update={"transaction_id": "T-template"}).model_dump_json())

    def without(field: str) -> Callable[[dict], object]:
        return lambda e: e.pop(field)

    def set_item(field: str, value: object) -> Callable[[dict], object]:
        return lambda e: e["items"][0].__setitem__(field, value)

    def new_ids(e: dict) -> None:
        e["event_id"] = str(uuid.uuid4())

    malformed = {
        "invalid_json": [b'{"event_id": "broken', b"not json at all"],
        "missing_field": [_mutated(base, without("store_id")), _mutated(base, without("items"))],
        "wrong_type": [
            _mutated(base, set_item("quantity", "three")),
            _mutated(base, lambda e: e.update(items=5)),
        ],
        "non_positive_quantity": [
            _mutated(base, set_item("quantity", -2)),
            _mutated(base, set_item("quantity", 0)),
        ],
        "negative_price": [_mutated(base, set_item("unit_price", -1.5))],
        "unknown_product": [_mutated(base, lambda e: (new_ids(e), set_item("product_id", "P9999")(e)))],
        "unknown_store": [_mutated(base, lambda e: (new_ids(e), e.update(store_id="S999")))],
        "oversized": [json.dumps({"padding": "x" * (MAX_EVENT_BYTES + 1)}).encode()],
    }
    bad_payloads = [(None, p) for kind in malformed.values() for p in kind]
    good_payloads = [(t.key, t.model_dump_json().encode()) for t in good]
    # Bad input interleaved with good input: the query must neither stop nor lose a good event.
    mixed = [x for pair in zip(good_payloads, bad_payloads, strict=False) for x in pair]
    send(stream, stream.transactions_topic, mixed + good_payloads[len(bad_payloads) :])
    expected = sum(len(v) for v in malformed.values())
    wait_for(lambda: scalar(stream, "select count(*) from ops.dead_letter") == expected, what="dead letters")
    wait_for(
        lambda: (
            scalar(stream, "select count(*) from raw.transaction_items")
            == before_items + sum(len(t.items) for t in good)
        ),
        what="good events after bad ones",
    )
    with psycopg.connect(stream.writer_dsn) as conn:
        reasons = dict(conn.execute("select reason, count(*) from ops.dead_letter group by 1").fetchall())
        complete = conn.execute(
            "select bool_and(payload is not null and kafka_offset is not null and error <> '')"
            " from ops.dead_letter"
        ).fetchone()[0]
    assert reasons == {kind: len(v) for kind, v in malformed.items()}
    assert complete


def test_dlq_replay_resubmits_fixed_records(stream: Settings) -> None:
    from typer.testing import CliRunner

    from spark import dead_letter
    from spark.cli import app

    before = scalar(stream, "select count(*) from raw.transactions")
    with psycopg.connect(stream.writer_dsn, autocommit=True) as conn:
        conn.execute(
            "insert into raw.products (product_id, sku, name, category, brand, unit_cost, base_price) "
            "values ('P9999', 'SKU-TEST-9999', 'Loaded late', 'Test', 'Test', 1, 2)"
        )
    try:
        listed = CliRunner().invoke(
            app,
            ["dlq", "list"],
            env={"RETAIL_PG_PORT": str(stream.pg_port), "RETAIL_STATE_DIR": str(stream.state_dir)},
        )
        assert listed.exit_code == 0, listed.output
        assert "unknown_product" in listed.output
        # Not ordering: the workers' dimension cache lives stream_dimension_refresh_s (a TTL nothing
        # reports on); once it has passed, every worker reads the new product.
        time.sleep(2 * stream.stream_dimension_refresh_s)
        assert dead_letter.replay(stream, "unknown_product") == 1
        wait_for(
            lambda: scalar(stream, "select count(*) from raw.transactions") == before + 1, what="replayed"
        )
        assert (
            scalar(
                stream,
                "select count(*) from ops.dead_letter where reason = 'unknown_product' "
                "and replayed_at is not null",
            )
            == 1
        )
        assert dead_letter.replay(stream, "unknown_product") == 0
    finally:
        with psycopg.connect(stream.writer_dsn, autocommit=True) as conn:
            conn.execute("delete from raw.transaction_items where product_id = 'P9999'")
            conn.execute("delete from raw.products where product_id = 'P9999'")
