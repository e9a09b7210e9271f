"""Benchmark of the speed layer, in one run on the same data:

(a) sustained line items/s from Kafka to committed raw facts, the whole streaming job running, over a
    backlog produced beforehand (timed once `start_queries` returned: JVM and warm-up excluded);
(b) the same backlog through a bare kafka-python consumer + COPY loop into the same raw tables with the
    same `insert ... on conflict do nothing`, and the ratio a/b;
(c) event time to row visible in raw.transactions while a producer sends a steady 1,000 transactions/s.

On its own embedded PostgreSQL and Kafka; Spark in-process (`local[*]`, the settings' trigger and bound).

    python -m bench.speed_layer [--quick] [--transactions N] [--latency-s S]

Last line: one JSON object (line_items_per_s, baseline_line_items_per_s, ratio, latency_p50_s,
latency_p95_s, line_items). Goals (2 cores): >= 10,000 line items/s; ratio >= 0.5; p95 <= 3 s.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from retail.contracts import LineItem, TransactionEvent
from retail.settings import Settings
from stack import stack
from tests.scratch import scratch_settings

FULL_TRANSACTIONS = 150_000
QUICK_TRANSACTIONS = 15_000


def basket(
    rng: random.Random, products: list[str], stores: list[str], event_ts: datetime
) -> TransactionEvent:
    items = [
        LineItem(
            product_id=rng.choice(products),
            quantity=rng.randint(1, 4),
            unit_price=Decimal(rng.randint(50, 5000)) / 100,
        )
        for _ in range(rng.randint(1, 5))
    ]
    return TransactionEvent(
        event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        transaction_id=f"T{rng.getrandbits(64):016x}",
        event_ts=event_ts,
        store_id=rng.choice(stores),
        channel="store",
        payment_method="card",
        items=items,
    )


def load_dimensions(settings: Settings) -> tuple[list[str], list[str]]:
    ids = []
    with psycopg.connect(settings.writer_dsn) as conn, conn.cursor() as cursor:
        for table, path in (
            ("raw.products", settings.product_catalog_csv),
            ("raw.stores", settings.store_locations_csv),
        ):
            lines = path.read_text(encoding="utf-8").splitlines()
            # `retail up` may already load them (a later issue's DAG): insert what is missing only.
            cursor.execute(f"create temp table dims (like {table} including defaults) on commit drop")
            with cursor.copy(f"copy dims ({lines[0]}) from stdin (format csv)") as copy:
                copy.write("\n".join(lines[1:]) + "\n")
            cursor.execute(f"insert into {table} select * from dims on conflict do nothing")
            conn.commit()
            ids.append([line.split(",", 1)[0] for line in lines[1:]])
    return ids[0], ids[1]


def produce_backlog(settings: Settings, count: int, products: list[str], stores: list[str]) -> int:
    rng = random.Random(42)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, batch_size=512 * 1024
    )
    lines = 0
    now = datetime.now(UTC)
    for _ in range(count):
        event = basket(rng, products, stores, now)
        lines += len(event.items)
        producer.send(settings.transactions_topic, key=event.key, value=event.model_dump_json().encode())
    producer.flush()
    producer.close()
    return lines


def count_items(settings: Settings) -> int:
    with psycopg.connect(settings.writer_dsn) as conn:
        return conn.execute("select count(*) from raw.transaction_items").fetchone()[0]


def truncate_raw(settings: Settings) -> None:
    with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
        conn.execute(
            "truncate raw.transactions, raw.transaction_items, ops.sink_commits, ops.stream_watermarks, "
            "speed.product_metrics_minute, ops.dead_letter, ops.late_events, ops.stream_progress"
        )


def baseline(settings: Settings, expected_lines: int) -> float:
    """(b): kafka-python consumer + json.loads + CSV + COPY + insert-select, in batches of 50k records."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=50_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    partitions = consumer.partitions_for_topic(settings.transactions_topic)
    consumer.assign([TopicPartition(settings.transactions_topic, p) for p in partitions])
    consumer.seek_to_beginning()
    loaded = 0
    started = time.perf_counter()
    with psycopg.connect(settings.writer_dsn) as conn:
        while loaded < expected_lines:
            records = [r for batch in consumer.poll(timeout_ms=1000).values() for r in batch]
            if not records:
                continue
            baskets, items = io.StringIO(), io.StringIO()
            basket_csv, item_csv = csv.writer(baskets), csv.writer(items)
            for record in records:
                event = json.loads(record.value)
                basket_csv.writerow(
                    (
                        event["transaction_id"],
                        event["event_id"],
                        event["event_ts"],
                        event["store_id"],
                        event["customer_id"],
                        event["channel"],
                        event["payment_method"],
                        len(event["items"]),
                        event["schema_version"],
                        record.partition,
                        record.offset,
                    )
                )
                for number, item in enumerate(event["items"], 1):
                    item_csv.writerow(
                        (
                            event["transaction_id"],
                            number,
                            item["product_id"],
                            item["quantity"],
                            item["unit_price"],
                            item["discount"],
                            event["event_ts"],
                            event["store_id"],
                        )
                    )
                    loaded += 1
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(
                    "create temp table b_tx (like raw.transactions including defaults) on commit drop;"
                    "create temp table b_items (like raw.transaction_items including defaults) "
                    "on commit drop"
                )
                with cursor.copy(
                    "copy b_tx (transaction_id, event_id, event_ts, store_id, customer_id, channel, "
                    "payment_method, line_count, schema_version, kafka_partition, kafka_offset) "
                    "from stdin (format csv)"
                ) as copy:
                    copy.write(baskets.getvalue())
                with cursor.copy(
                    "copy b_items (transaction_id, line_number, product_id, quantity, unit_price, "
                    "discount, event_ts, store_id) from stdin (format csv)"
                ) as copy:
                    copy.write(items.getvalue())
                cursor.execute("insert into raw.transactions select * from b_tx on conflict do nothing")
                cursor.execute(
                    "insert into raw.transaction_items select * from b_items on conflict do nothing"
                )
    consumer.close()
    return loaded / (time.perf_counter() - started)


def measure_latency(
    settings: Settings, seconds: float, products: list[str], stores: list[str], rate: int = 1000
) -> tuple[list[float], int]:
    """(c): send `rate` baskets/s stamped with the send time; poll raw.transactions for when each appears."""
    rng = random.Random(7)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll() -> None:
        with psycopg.connect(settings.writer_dsn, autocommit=True) as conn:
            since = datetime.now(UTC)
            while not done.is_set() or len(seen) < len(sent):
                rows = conn.execute(
                    "select transaction_id, ingested_at from raw.transactions "
                    "where ingested_at >= %s - interval '10 seconds'",
                    (since,),
                ).fetchall()
                now = time.time()
                for transaction_id, ingested_at in rows:
                    seen.setdefault(transaction_id, now)
                    since = max(since, ingested_at)
                if done.is_set() and time.time() > stop_at + 60:
                    break
                time.sleep(0.05)

    stop_at = time.time() + seconds
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    tick = 0.01
    next_tick = time.time()
    while time.time() < stop_at:
        for _ in range(int(rate * tick)):
            now = datetime.now(UTC)
            event = basket(rng, products, stores, now)
            sent[event.transaction_id] = now.timestamp()
            producer.send(settings.transactions_topic, key=event.key, value=event.model_dump_json().encode())
        next_tick += tick
        time.sleep(max(0.0, next_tick - time.time()))
    producer.flush()
    producer.close()
    done.set()
    poller.join(timeout=90)
    # Baskets not visible 60 s after the last send are missing from the list: report both counts.
    return [seen[t] - sent[t] for t in sent if t in seen], len(sent)


def batch_profile(queries: list, since: datetime) -> dict[str, tuple[int, int]]:
    """Where (c)'s latency goes: median and p95 of each phase of the raw_transactions query's
    micro-batches with data since (c) started (Spark's durationMs: latestOffset = the source's planning,
    addBatch = read, validate, toArrow and the Postgres transaction, walCommit/commitOffsets = checkpoint
    writes), plus the gap between consecutive triggers."""
    (raw,) = [q for q in queries if q.name == "raw_transactions"]
    batches = [
        p
        for p in raw.recentProgress
        if p.numInputRows > 0 and datetime.fromisoformat(p.timestamp.replace("Z", "+00:00")) >= since
    ]
    phases: dict[str, list[int]] = {}
    for progress in batches:
        for phase, ms in progress.durationMs.items():
            phases.setdefault(phase, []).append(int(ms))
    starts = [datetime.fromisoformat(p.timestamp.replace("Z", "+00:00")) for p in batches]
    phases["trigger_gap"] = [int((b - a).total_seconds() * 1000) for a, b in itertools.pairwise(starts)]
    return {
        phase: (int(statistics.median(values)), sorted(values)[math.ceil(0.95 * (len(values) - 1))])
        for phase, values in sorted(phases.items())
        if values
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (under two minutes)")
    parser.add_argument("--transactions", type=int, help="backlog size for (a) and (b)")
    parser.add_argument("--latency-s", type=float, help="duration of the 1,000 transactions/s phase")
    args = parser.parse_args()
    transactions = args.transactions or (QUICK_TRANSACTIONS if args.quick else FULL_TRANSACTIONS)
    latency_s = args.latency_s or (15.0 if args.quick else 60.0)

    state = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    settings = scratch_settings(state / ".retail")
    try:
        settings = stack.up(settings, report=lambda line: print(f"  {line}", file=sys.stderr))
        products, stores = load_dimensions(settings)
        lines = produce_backlog(settings, transactions, products, stores)
        print(f"backlog: {transactions} transactions, {lines} line items", file=sys.stderr)

        baseline_rate = baseline(settings, lines)
        print(f"(b) baseline consumer + COPY: {baseline_rate:,.0f} line items/s", file=sys.stderr)
        truncate_raw(settings)

        from spark.session import spark_session
        from spark.streaming_job import start_queries

        spark = spark_session(settings, "retail-speed-layer-bench", ui=False)
        spark.sparkContext.setLogLevel("ERROR")
        queries = start_queries(spark, settings)
        # Timed from here: the queries have initialized their sources (JVM and query start-up excluded).
        started = time.perf_counter()
        while count_items(settings) < lines:
            if any(q.exception() for q in queries):
                raise SystemExit(
                    f"a query failed: {[str(q.exception())[:500] for q in queries if q.exception()]}"
                )
            time.sleep(0.2)
        stream_rate = lines / (time.perf_counter() - started)
        print(f"(a) streaming job: {stream_rate:,.0f} line items/s", file=sys.stderr)

        # (c) starts once every query (metrics, lake) has caught up with the backlog too: otherwise it
        # would measure the backlog, not the latency at a steady rate.
        caught_up = time.perf_counter()
        while not all(
            q.status["isTriggerActive"] is False and not q.status["isDataAvailable"] for q in queries
        ):
            if time.perf_counter() - caught_up > 900:
                raise SystemExit("the queries did not catch up with the backlog within 15 minutes")
            time.sleep(0.5)
        print(
            f"all queries caught up {time.perf_counter() - caught_up:.0f}s after the raw facts",
            file=sys.stderr,
        )
        steady_since = datetime.now(UTC)
        measured, sent = measure_latency(settings, latency_s, products, stores)
        latencies = sorted(measured)
        profile = batch_profile(queries, steady_since)
        for phase, (median, p95) in profile.items():
            print(f"  raw_transactions {phase}: median {median} ms, p95 {p95} ms", file=sys.stderr)
        for query in queries:
            if query.exception():
                print(f"query {query.name} failed: {str(query.exception())[:3000]}", file=sys.stderr)
        for query in queries:
            query.stop()
        spark.stop()
        p50 = statistics.median(latencies) if latencies else None
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
        print(
            f"(c) latency at 1,000 tx/s over {latency_s:.0f}s: p50 {p50:.2f}s p95 {p95:.2f}s "
            f"({len(latencies)} of {sent} baskets visible within 60 s of the last send)",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "line_items_per_s": round(stream_rate),
                    "baseline_line_items_per_s": round(baseline_rate),
                    "ratio": round(stream_rate / baseline_rate, 3),
                    "latency_p50_s": round(p50, 3) if p50 is not None else None,
                    "latency_p95_s": round(p95, 3) if p95 is not None else None,
                    "line_items": lines,
                    "latency_baskets_sent": sent,
                    "latency_baskets_seen": len(latencies),
                    "quick": args.quick,
                    "batch_ms_median_p95": profile,
                }
            )
        )
    finally:
        stack.down(settings)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
